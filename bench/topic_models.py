"""20 Newsgroups (NVDM's 2,000-word version, or ProdLDA's 1,995 words with `--variant=prodlda`):
`nvdm`, `gsm`, `prodlda` and `lda` with 50 latent dimensions / topics, beside the published
perplexities (Miao et al. 2016: NVDM 836, LDA 1091, as recalled in ../shared/data/README.md;
GSM 787, Miao et al. 2017, as quoted in the iTM-VAE paper's Table 1; the target for GSM is "at
or below NVDM"). `gsm_log_linear` is GSM as a document model (`--topic_decoder=log_linear`).

    python bench/topic_models.py [--models=nvdm,gsm,lda] [--nvdm_steps=40000] [--gsm_steps=40000]
        [--prodlda_steps=40000] [--lda_steps=1200] [--variant=nvdm]

Models: nvdm, gsm, gsm_log_linear (trained for --gsm_steps), prodlda, lda.

Each model is trained by the trainer (`python -m trainers.train`, one process each, the command is
printed; its output, with each topic's top words, is kept as log.txt in the model directory)
and evaluated on the whole test split: `ppl` = exp(mean_d −ELBO_d / N_d), the
per-document convention of the published numbers, `ppl_corpus` = exp(−Σ ELBO / Σ N), the mean KL
per document and the mean NPMI of the topics' top 10 words on the test documents. The settings
are those of Miao et al.'s NVDM code (one tanh layer of 500 units, batch 64) except Adam's step
size (1e-3 decayed to 0 along a cosine, instead of a constant 5e-5, to fit a CPU budget of
minutes) and no alternating encoder/decoder updates; ProdLDA is trained with them too
(`--topic_recipe=nvdm`: no batch norm, no dropout), not by its paper's recipe, which
`bench/prodlda_pyro.py` measures beside Pyro's ProdLDA. LDA is fitted by online VB (Hoffman et al.
2010; α = η = 1/K, τ0 = 10, κ = 0.7).

#### References
- Miao, Yu & Blunsom (2016). Neural Variational Inference for Text Processing. ICML.
- Miao, Grefenstette & Blunsom (2017). Discovering Discrete Latent Topics with Neural Variational
  Inference. ICML.
- Hoffman, Blei & Bach (2010). Online Learning for Latent Dirichlet Allocation. NIPS.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED = {  # per --variant; the ProdLDA vocabulary's published numbers were not checked
    "nvdm": {"nvdm": "836 (Miao et al. 2016)",
             "gsm": "787 (Miao et al. 2017, via iTM-VAE); target ≤ NVDM",
             "lda": "1091 (Miao et al. 2016)"},
    "prodlda": {},
}
MODEL_ARGS = {  # by row name; the model is the name up to its first "_"
    "nvdm": ["--hidden_dim=500", "--learning_rate=1e-3", "--learning_rate_schedule=cosine"],
    "gsm": ["--hidden_dim=500", "--embed_dim=256", "--learning_rate=1e-3",
            "--learning_rate_schedule=cosine"],
    "gsm_log_linear": ["--hidden_dim=500", "--embed_dim=256", "--topic_decoder=log_linear",
                       "--learning_rate=1e-3", "--learning_rate_schedule=cosine"],
    "prodlda": ["--topic_recipe=nvdm", "--hidden_dim=500", "--learning_rate=1e-3",
                "--learning_rate_schedule=cosine"],
    "lda": [],
}


def train(args: list[str], model_dir: str) -> tuple[dict, float, list[str]]:
    """Runs the trainer; its output (progress, each topic's top words) goes to model_dir/log.txt."""
    command = [sys.executable, "-m", "trainers.train", *args, f"--model_dir={model_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    with open(os.path.join(REPO, model_dir, "log.txt"), "w") as f:
        f.write(proc.stdout)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), time.perf_counter() - start, command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="nvdm,gsm,lda")
    parser.add_argument("--nvdm_steps", type=int, default=40000)
    parser.add_argument("--gsm_steps", type=int, default=40000)
    parser.add_argument("--prodlda_steps", type=int, default=40000)
    parser.add_argument("--lda_steps", type=int, default=1200)
    parser.add_argument("--num_topics", type=int, default=50)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--variant", default="nvdm", choices=["nvdm", "prodlda"])
    parser.add_argument("--model_root", default="runs/bench_topic_models")
    args = parser.parse_args()
    print("| model | K | steps | test ppl | ppl_corpus | KL | NPMI | published ppl | wall s "
          "| command |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |")
    for name in args.models.split(","):
        model = name.partition("_")[0]
        steps = getattr(args, f"{model}_steps")
        result, seconds, command = train([
            f"--model={model}", "--dataset=news20", f"--news20_variant={args.variant}",
            f"--num_topics={args.num_topics}", f"--batch_size={args.batch_size}",
            f"--train_steps={steps}", "--eval_batch_size=500", "--log_every=1000",
            f"--checkpoint_every={steps}", *MODEL_ARGS[name]],
            f"{args.model_root}/{name}_{args.variant}_{args.num_topics}")
        shown = " ".join(["python -m trainers.train", *command[3:]])
        print(f"| {name} | {args.num_topics} | {result['step']} | {result['ppl']:.0f} "
              f"| {result['ppl_corpus']:.0f} | {result['kl']:.1f} | {result['npmi']:.3f} "
              f"| {PUBLISHED[args.variant].get(name, '–')} | {seconds:.0f} | `{shown}` |", flush=True)


if __name__ == "__main__":
    main()
