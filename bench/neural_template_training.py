"""Training throughput of neural_template on E2E, for any checkout of tflv.

    python bench/neural_template_training.py [--tree=DIR] [--bucket_width=0] [--steps=30]
        [--blocks=3] [--warmup=4] [--batch_size=16] [--num_states=16] [--state_copies=4]
        [--dim=64] [--autoregressive] [--data_dir=DIR]

Draws E2E training batches once, as `trainers.train` would (`--min_count=10`, shuffled with seed
0, sentences of at most 55 tokens, `--bucket_width` length buckets as `trainers.run.form_options`
makes them), and times `trainers.loop.Trainer`'s training step on them (forward, backward, Adam,
clipping 5; a graph, `jit_compile="false"`, which `auto` chooses for batches of varying shapes;
one `float(loss)` per step, as `Trainer.train`). Prints tokens/s (real target tokens, `<eos>`
included) of each block of `--steps` steps and ends with one line `THROUGHPUT {json}` holding
their median.

`--tree=DIR` imports `tflv`, `data` and `trainers` from another checkout, e.g. the code before a
change: `git worktree add ../before COMMIT`, then `--tree=../before` (the batches are drawn by
that checkout's data pipeline, with the same seed, so both time the same batches). Run the
variants one after another on an idle core (`taskset -c 0`) and compare their medians.
"""
import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", default=REPO, help="the checkout whose code is timed")
    parser.add_argument("--bucket_width", type=int, default=0)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_states", type=int, default=16)
    parser.add_argument("--state_copies", type=int, default=4)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--autoregressive", action="store_true")
    parser.add_argument("--data_dir", default=os.environ.get("TFLV_DATA_DIR"))
    args = parser.parse_args()
    tree = os.path.abspath(args.tree)
    sys.path.insert(0, tree)

    import keras
    import tensorflow as tf

    import data
    from tflv.models.neural_template import NeuralTemplate
    from trainers.loop import Trainer

    loaded = sys.modules[NeuralTemplate.__module__].__file__
    if not loaded.startswith(tree + os.sep):
        raise SystemExit(f"imported {loaded}, not from --tree={tree}")
    keras.utils.set_random_seed(0)
    corpus = data.load("e2e", data_dir=args.data_dir, min_count=10)
    options = {"max_length": 55}
    if args.bucket_width:
        options["bucket_boundaries"] = list(range(args.bucket_width, 257, args.bucket_width))
    dataset = corpus.dataset("train", "parallel", args.batch_size, shuffle=True, seed=0,
                             repeat=True, **options)
    count = args.warmup + args.steps * args.blocks
    batches = [batch for _, batch in zip(range(count), dataset)]
    config = NeuralTemplate.Config(num_states=args.num_states, state_copies=args.state_copies,
                                   embed_dim=args.dim, hidden_dim=args.dim,
                                   template_autoregressive=args.autoregressive)
    trainer = Trainer(lambda: NeuralTemplate.from_corpus(corpus, config),
                      tf.distribute.get_strategy(), global_batch_size=args.batch_size,
                      learning_rate=2e-3, clip_norm=5.0, jit_compile="false")
    trainer.build(batches[0])
    for batch in batches[:args.warmup]:
        float(trainer._train_step(batch)[0])
    rates = []
    for block in range(args.blocks):
        timed = batches[args.warmup + block * args.steps:][:args.steps]
        tokens, start = 0.0, time.perf_counter()
        for batch in timed:
            loss, counted = trainer._train_step(batch)
            float(loss)
            tokens += float(counted)
        rates.append(tokens / (time.perf_counter() - start))
        print(f"block {block + 1}/{args.blocks}: {rates[-1]:.0f} tokens/s", flush=True)
    padded = statistics.mean(int(b["target_mask"].shape[1]) for b in batches)
    real = statistics.mean(float(tf.reduce_sum(b["target_mask"])) / int(b["target_mask"].shape[0])
                           for b in batches)
    print("THROUGHPUT " + json.dumps({
        "tree": os.path.relpath(tree, REPO), "bucket_width": args.bucket_width,
        "tokens_per_s": round(statistics.median(rates), 1), "blocks": [round(r) for r in rates],
        "padded_length": round(padded, 1), "real_length": round(real, 1),
        "autoregressive": args.autoregressive, "batch_size": args.batch_size}), flush=True)


if __name__ == "__main__":
    main()
