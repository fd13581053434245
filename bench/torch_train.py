#!/usr/bin/python3
"""torch_train.py: the PyTorch reference for bench_train: the same dnn
[100,100] (ReLU, softmax cross-entropy summed over the batch), Adagrad with
accumulators starting at 0.1, gradients clipped to global norm 5, one
thread, on the same 60,000 MNIST images. Prints `name value` lines."""
import statistics
import struct
import sys
import time

import numpy as np
import torch


def load_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows * cols)
    return np.frombuffer(data, np.uint8, offset=8)


def dnn():
    """The exercise's dnn [100,100], Adagrad at 0.05 (accumulators from 0.1)
    and the summed cross-entropy: (model, optimizer, loss)."""
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10))
    opt = torch.optim.Adagrad(model.parameters(), lr=0.05,
                              initial_accumulator_value=0.1)
    return model, opt, torch.nn.CrossEntropyLoss(reduction="sum")


def bench(x, y, batch, steps, reps=5):
    torch.manual_seed(1)
    model, opt, loss_fn = dnn()
    n = x.shape[0]
    rates = []
    pos = 0
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(steps):
            idx = (np.arange(pos, pos + batch) * 7919) % n
            pos += batch
            xb = torch.from_numpy(x[idx].astype(np.float32) / 255.0)
            yb = torch.from_numpy(y[idx].astype(np.int64))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def recipe(x, y, seed=1):
    """The exercise's dnn recipe: 10,000 head rows shuffled, 7,500 train,
    2,500 validate; 1000 steps at batch 30; after each of 10 periods the
    log loss on both splits. Returns the seconds it took."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(10000)
    tr, va = idx[:7500], idx[7500:]
    xt = torch.from_numpy(x[tr].astype(np.float32) / 255.0)
    yt = torch.from_numpy(y[tr].astype(np.int64))
    xv = torch.from_numpy(x[va].astype(np.float32) / 255.0)
    yv = torch.from_numpy(y[va].astype(np.int64))
    model, opt, loss_fn = dnn()
    t0 = time.perf_counter()
    order = torch.randperm(7500)
    pos = 0
    for _period in range(10):
        for _ in range(100):
            if pos + 30 > 7500:
                order, pos = torch.randperm(7500), 0
            b = order[pos:pos + 30]
            pos += 30
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt[b]), yt[b]).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        with torch.no_grad():
            for xs, ys in ((xt, yt), (xv, yv)):
                torch.nn.functional.cross_entropy(model(xs), ys)
    return time.perf_counter() - t0


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "data"
    torch.set_num_threads(1)
    x = load_idx(f"{data}/mnist/train-images-idx3-ubyte")
    y = load_idx(f"{data}/mnist/train-labels-idx1-ubyte")
    print(f"torch_recipe_seconds {statistics.median(recipe(x, y, s) for s in (1, 2, 3)):.3f}")
    for batch in (30, 128):
        print(f"torch_samples_per_s_b{batch} {bench(x, y, batch, 60000 // batch // 4):.0f}")


if __name__ == "__main__":
    main()
