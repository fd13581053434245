#!/usr/bin/python3
"""torch_sweep.py DATA TRIALS_JSON: the PyTorch reference of the sweep
benchmark: the exercise's search done in Python as a user would, the 12
trials of bench/sweep_bench.py (their learning rates and hidden units, from
TRIALS_JSON) one after another in one process, one thread (on two cores
shared with other work, two torch threads were 17 times slower than one:
one trial took 170 s against 10 s, measured 2026-11-30), each as mnistd
trains a run: the first 10,000
MNIST training rows shuffled, 7,500 train and 2,500 validate, dnn with ReLU,
Adagrad (accumulators from 0.1), softmax cross-entropy summed over the
batch, clipping to global norm 5, 1000 steps of batch 30 in 5 periods, the
log loss of both splits and the validation accuracy after each period; and
the same median stopping rule (after period p >= 2, with at least 3 earlier
trials: stop when the best accuracy so far is below the median of their
running averages at p). Prints `name value` lines."""
import json
import statistics
import sys
import time

import numpy as np
import torch

from torch_train import load_idx


def trial(x, y, params, history):
    torch.manual_seed(params["seed"] % (2 ** 31))
    rng = np.random.default_rng(params["seed"])
    idx = rng.permutation(10000)
    tr, va = idx[:7500], idx[7500:]
    xt = torch.from_numpy(x[tr].astype(np.float32) / 255.0)
    yt = torch.from_numpy(y[tr].astype(np.int64))
    xv = torch.from_numpy(x[va].astype(np.float32) / 255.0)
    yv = torch.from_numpy(y[va].astype(np.int64))
    layers, n_in = [], 784
    for w in params["hidden_units"]:
        layers += [torch.nn.Linear(n_in, w), torch.nn.ReLU()]
        n_in = w
    model = torch.nn.Sequential(*layers, torch.nn.Linear(n_in, 10))
    opt = torch.optim.Adagrad(model.parameters(), lr=params["learning_rate"],
                              initial_accumulator_value=0.1)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    order, pos, curve = torch.randperm(7500), 0, []
    for period in range(1, 6):
        for _ in range(200):
            if pos + 30 > 7500:
                order, pos = torch.randperm(7500), 0
            b = order[pos:pos + 30]
            pos += 30
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt[b]), yt[b]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        with torch.no_grad():
            torch.nn.functional.cross_entropy(model(xt), yt)
            logits = model(xv)
            torch.nn.functional.cross_entropy(logits, yv)
            curve.append((logits.argmax(1) == yv).float().mean().item())
        others = [h for h in history if len(h) >= period]
        if period >= 2 and period < 5 and len(others) >= 3:
            median = statistics.median(sum(h[:period]) / period for h in others)
            if max(curve) < median:
                return curve, True
    return curve, False


def main():
    data, trials_path = sys.argv[1], sys.argv[2]
    with open(trials_path) as f:
        trials = json.load(f)
    torch.set_num_threads(1)
    x = load_idx(f"{data}/mnist/train-images-idx3-ubyte")
    y = load_idx(f"{data}/mnist/train-labels-idx1-ubyte")
    history, pruned, best = [], 0, 0.0
    t0 = time.perf_counter()
    for params in trials:
        curve, was_pruned = trial(x, y, params, history)
        history.append(curve)
        pruned += was_pruned
        if not was_pruned:
            best = max(best, curve[-1])
    print(f"torch_sweep_12_seconds {time.perf_counter() - t0:.2f}")
    print(f"torch_sweep_12_best_accuracy {best:.4f}")
    print(f"torch_sweep_12_pruned {pruned}")


if __name__ == "__main__":
    main()
