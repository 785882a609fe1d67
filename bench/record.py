"""The cost of recording an engine's own backward (:func:`gradviz.record`).

A micrograd-style training loop (an MLP of ``gradviz.nn``, or micrograd
0.1.0's own, on a small batch, a few SGD steps: forward, ``zero_grad``,
``backward``, update) runs twice in the same process: unrecorded, then inside
``gradviz.record()``; each run repeated ``--runs`` times and the best taken.
The table gives both times, their ratio, the ratio of a run under a
profile function that does nothing (the floor any ``sys.setprofile`` hook
costs: the interpreter calls it on every Python and C call), the
``_backward`` calls recorded, the calls kept (the last pass) and the passes
seen.

Usage::

    python bench/record.py                 # both engines, default sizes
    python bench/record.py --steps 2 --batch 4 --runs 1 --engines gradviz
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time


def _data(batch: int, inputs: int) -> tuple[list[list[float]], list[float]]:
    rnd = random.Random(0)
    xs = [[rnd.uniform(-1, 1) for _ in range(inputs)] for _ in range(batch)]
    return xs, [1.0 if sum(x) > 0 else -1.0 for x in xs]


def _train_gradviz(steps: int, batch: int) -> int:
    from gradviz.nn import MLP

    xs, ys = _data(batch, 3)
    model = MLP(3, [16, 16, 1])
    for _ in range(steps):
        preds = [model(x) for x in xs]
        loss = sum(((p - y) ** 2 for p, y in zip(preds, ys)), start=preds[0] * 0.0)
        model.zero_grad()
        loss.backward(accumulate=True)
        for p in model.parameters():
            p.data -= 0.01 * p.grad
    return 0


def _train_micrograd(steps: int, batch: int) -> int:
    from micrograd.nn import MLP

    random.seed(0)
    xs, ys = _data(batch, 3)
    model = MLP(3, [16, 16, 1])
    for _ in range(steps):
        preds = [model(x) for x in xs]
        loss = sum((p - y) ** 2 for p, y in zip(preds, ys))
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.01 * p.grad
    return 0


ENGINES = {"gradviz": _train_gradviz, "micrograd": _train_micrograd}


def _best(fns, runs: int) -> list[float]:
    """The best time of each of ``fns`` over ``runs`` rounds, run in turn within each round.

    Taking turns keeps a change in the machine's load (other processes)
    from landing on one variant only.
    """
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            gc.collect()
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def _nothing(frame: object, event: str, arg: object) -> None:
    """A profile function that does nothing: what the hook costs before it does any work."""


def main() -> None:
    import gradviz

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="SGD steps per run (default 5)")
    parser.add_argument("--batch", type=int, default=16, help="examples per step (default 16)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions, best taken (default 3)")
    parser.add_argument("--engines", default="gradviz,micrograd", help="comma-separated: gradviz, micrograd")
    args = parser.parse_args()
    print(f"{'engine':<10} {'plain':>9} {'recorded':>9} {'ratio':>6} {'floor':>6} {'calls':>9} {'kept':>8} {'passes':>6}")
    for name in args.engines.split(","):
        train = ENGINES[name]
        try:
            train(1, 1)
        except ImportError as exc:
            print(f"{name:<10} skipped: {exc}")
            continue
        seen: list[gradviz.Recording] = []

        def recorded() -> None:
            with gradviz.record() as rec:
                train(args.steps, args.batch)
            seen.append(rec)

        def floor() -> None:
            sys.setprofile(_nothing)
            try:
                train(args.steps, args.batch)
            finally:
                sys.setprofile(None)

        plain, with_rec, bare = _best([lambda: train(args.steps, args.batch), recorded, floor], args.runs)
        rec = seen[-1]
        print(
            f"{name:<10} {plain:>8.3f}s {with_rec:>8.3f}s {with_rec / plain:>5.2f}x {bare / plain:>5.2f}x "
            f"{rec.total_calls:>9,} {len(rec.calls):>8,} {rec.passes:>6,}"
        )


if __name__ == "__main__":
    main()
