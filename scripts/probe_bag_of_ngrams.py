"""Diagnostic probe, not a baseline: the bag-of-n-grams model inside our byte array, without the Perceiver. Mean of
the hashed byte 1-6-gram embeddings of the first 2,046 bytes (the model's own `hash_ngrams`, 65,536 buckets), an
optional LayerNorm, one Linear; AdamW, linear decay with 6% warm-up, 3 epochs; test accuracy after each epoch.

    python scripts/probe_bag_of_ngrams.py TRAIN.csv TEST.csv [--lr 2e-3] [--batch 8] [--width 128] [--no_norm]
"""

import argparse
import csv
import random
import sys

import torch
import torch.nn.functional as F

from perceiver_byte.modeling_perceiver_byte import hash_ngrams

parser = argparse.ArgumentParser()
parser.add_argument("train"), parser.add_argument("test")
parser.add_argument("--lr", type=float, default=2e-3)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--width", type=int, default=128)
parser.add_argument("--no_norm", action="store_true")
args = parser.parse_args()
torch.set_num_threads(1), torch.manual_seed(0)
csv.field_size_limit(sys.maxsize)


def load(path):
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    return [r["text"].encode()[:2046] for r in rows], [r["label"] for r in rows]


(train_x, train_y), (test_x, test_y) = load(args.train), load(args.test)
labels = {label: i for i, label in enumerate(sorted(set(train_y)))}
table = torch.nn.Embedding(65536, args.width)
torch.nn.init.normal_(table.weight, std=0.02)
head = torch.nn.Linear(args.width, len(labels))
optimizer = torch.optim.AdamW([*table.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.01)
steps = 3 * len(train_x) // args.batch
schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1, s / (0.06 * steps)) * max(0, 1 - s / steps))


def features(texts):
    out = []
    for text in texts:
        ids = torch.tensor([b + 6 for b in text] or [0])[None]
        mean = table(hash_ngrams(ids, [1, 2, 3, 4, 5, 6], 65536, 0).flatten()).mean(0)
        out.append(mean if args.no_norm else F.layer_norm(mean, mean.shape))
    return torch.stack(out)


order = list(range(len(train_x)))
for epoch in range(3):
    random.Random(epoch).shuffle(order)
    for i in range(0, len(order), args.batch):
        batch = order[i : i + args.batch]
        logits = head(features([train_x[k] for k in batch]))
        loss = F.cross_entropy(logits, torch.tensor([labels[train_y[k]] for k in batch]))
        optimizer.zero_grad(), loss.backward(), optimizer.step(), schedule.step()
    with torch.no_grad():
        predicted = torch.cat([head(features(test_x[i : i + 64])).argmax(-1) for i in range(0, len(test_x), 64)])
    accuracy = sum(int(p) == labels.get(y, -1) for p, y in zip(predicted.tolist(), test_y)) / len(test_y)
    print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f}", flush=True)
