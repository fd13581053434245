#!/usr/bin/python3
"""torch_cnn.py: the PyTorch reference for bench_cnn: the same default cnn
(conv 16 filters 5x5 valid, ReLU, max-pool 2; conv 32 filters 5x5 valid,
ReLU, max-pool 2; dense 100 ReLU; dense 10; softmax cross-entropy summed
over the batch), Adam at 0.001, gradients clipped to global norm 5, one
thread, on the same 60,000 MNIST images in the same order as
bench/bench_cnn.c (row (k * 7919) mod 60000 for the k-th sample).
Prints `torch_cnn_samples_per_s_b<B>` (wall clock) and
`torch_cnn_cpu_samples_per_s_b<B>` (the main thread's CPU time, where one
intra-op thread computes) for B = 32 and 128: medians of three
repetitions of 6,400 samples, as bench_cnn does."""
import statistics
import sys
import time

import numpy as np
import torch

from torch_train import load_idx


def cnn():
    """The default cnn of mnistd (engine/cnn.c), NCHW as PyTorch has it:
    (model, optimizer, loss)."""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 4 * 4, 100), torch.nn.ReLU(),
        torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    return model, opt, torch.nn.CrossEntropyLoss(reduction="sum")


def bench(x, y, batch, steps, reps=3):
    torch.manual_seed(1)
    model, opt, loss_fn = cnn()
    n = x.shape[0]
    rates, cpu_rates = [], []
    pos = 0
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            idx = (np.arange(pos, pos + batch) * 7919) % n
            pos += batch
            xb = torch.from_numpy(x[idx].astype(np.float32) / 255.0)
            xb = xb.reshape(batch, 1, 28, 28)
            yb = torch.from_numpy(y[idx].astype(np.int64))
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        rates.append(steps * batch / (time.perf_counter() - t0))
        cpu_rates.append(steps * batch / (time.thread_time() - c0))
    return statistics.median(rates), statistics.median(cpu_rates)


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "data"
    torch.set_num_threads(1)
    x = load_idx(f"{data}/mnist/train-images-idx3-ubyte")
    y = load_idx(f"{data}/mnist/train-labels-idx1-ubyte")
    for batch in (32, 128):
        rate, cpu_rate = bench(x, y, batch, 6400 // batch)
        print(f"torch_cnn_samples_per_s_b{batch} {rate:.0f}")
        print(f"torch_cnn_cpu_samples_per_s_b{batch} {cpu_rate:.0f}", flush=True)


if __name__ == "__main__":
    main()
