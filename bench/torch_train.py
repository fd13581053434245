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


def bench(x, y, batch, steps, reps=5):
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10))
    opt = torch.optim.Adagrad(model.parameters(), lr=0.05,
                              initial_accumulator_value=0.1)
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
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


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "data"
    torch.set_num_threads(1)
    x = load_idx(f"{data}/mnist/train-images-idx3-ubyte")
    y = load_idx(f"{data}/mnist/train-labels-idx1-ubyte")
    for batch in (30, 128):
        print(f"torch_samples_per_s_b{batch} {bench(x, y, batch, 60000 // batch // 4):.0f}")


if __name__ == "__main__":
    main()
