r"""Hidden Markov model over token sequences, with exact inference by dynamic programming.

The model (Model 3 of Kim, Wiseman & Rush 2018) over states z_t ∈ {1..K} and tokens
x_t ∈ {0..V-1}:

$$p(x, z) = \pi_{z_1} \prod_{t=2}^{T} A_{z_{t-1} z_t} \prod_{t=1}^{T} E_{z_t x_t},$$

π = softmax(initial_logits), A = softmax(transition_logits), E = softmax(emission_logits),

normalised once (log_softmax over K or V), the emission column of each token then gathered:
no per-position normalisation. `HMM.from_log_potentials` takes per-position scores instead
(a neural HMM: log p(x_t | z_t = k) from a network, transitions shared or per position, in
which case the "log probability" is the log-partition log Σ_z exp score(z)).

* `log_prob(x)` = log p(x) = log Σ_z p(x, z): the forward algorithm (`_forward.forward`), in
  scaled probability space (one [B, K] × [K, K] matmul per step) or in log space; by default
  ("auto") the scaled pass wherever it is guaranteed exact, else log space (the rule is in
  `_forward`'s docstring). Exact on every input: a sequence of probability 0 (a token no
  state can emit, a path the −inf transitions forbid) has log p = −inf, unreachable states
  have zero marginals and every gradient is finite. T = 0 gives log p = 0 (the empty path).
* `posterior(x)`: log p(x) and the posterior marginals p(z_t | x), p(z_{t-1}, z_t | x), taken as
  the gradient of log p(x) w.r.t. the log-potentials (Eisner 2016).
* `viterbi(x)` = argmax_z p(z | x): the max-semiring forward pass and its backtrace.
* `posterior_sample(x)`: z ~ p(z | x) by forward-filtering backward-sampling.
* `posterior_entropy(x)` = H[p(z | x)] = log Z - E_q[score(z)] = log Z - Σ θ · ∂ log Z / ∂ θ
  (score is linear in the log-potentials θ), the entropy term of an ELBO whose q is a chain.
* `expected_counts(x)`: E[#initial, #transition, #emission] summed over the batch — the E step
  of EM (Baum–Welch) as the gradient of Σ log p(x) w.r.t. the normalised log-parameters.
* `sample(n)`: ancestral sampling of token sequences.

Batch shapes broadcast as in TFP: initial [..., K], transition [..., K, K], emission
[..., K, V] and x [..., T] (and mask [..., T]) broadcast their leading axes. mask is bool or
0/1, true for real tokens, a prefix per row; a padded batch gives exactly the per-row results
of the unpadded sequences (zero marginals, state 0 and zero entropy contributions at padding).

This is a TFP-style class (batch_shape, log_prob, sample) rather than a `tfd.Distribution`
subclass, because its methods take a mask and a potentials-HMM takes no x.

Speed: every method is plain TF that XLA compiles. In graph mode each step of the recursion
pays the while-loop's per-op overhead; inside `tf.function(jit_compile=True)` that overhead
goes and the scaled forward pass runs as fast as a bare matmul loop (BENCHMARKS.md, "HMM
forward algorithm"). The gradient of log p is a hand-written backward pass (the β recursion
as one matmul per step, `_forward`), not autodiff through the loop; second-order gradients
(posterior_entropy's, a loss on posterior marginals) are autodiff through that backward pass.
XLA drops `tf.debugging` assertions: under `jit_compile` an
out-of-range token id is clamped, not reported, so validate inputs outside the compiled step.

#### Examples

```python
hmm = tflv.distributions.HMM(initial_logits, transition_logits, emission_logits)
log_px = hmm.log_prob(x, mask)                      # [B]
unary, pairwise = hmm.posterior_marginals(x, mask)  # [B, T, K], [B, T-1, K, K]
path = hmm.viterbi(x, mask)                         # int32 [B, T]
neural = tflv.distributions.HMM.from_log_potentials(init [B, K], trans [B, T-1, K, K],
                                                    emit [B, T, K], per_step_transitions=True)
neural.log_prob(mask=mask)
```

#### References

Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in speech
recognition. Proceedings of the IEEE 77(2).

Eisner, J. (2016). Inside-outside and forward-backward algorithms are just backprop.
Workshop on Structured Prediction for NLP.

Kim, Y., Wiseman, S. & Rush, A. M. (2018). A tutorial on deep latent variable models of
natural language. arXiv:1812.06834.

Tran, K., Bisk, Y., Vaswani, A., Marcu, D. & Knight, K. (2016). Unsupervised neural hidden
Markov models. Workshop on Structured Prediction for NLP.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tflv.distributions import _checks
from tflv.distributions._backtrack import backtrack, pairwise_marginals
from tflv.distributions._forward import (SUM_SEMIRINGS, check_semiring, forward,
                                         log_partition_gradients)


class Posterior(NamedTuple):
    """log_prob [...], unary p(z_t | x) [..., T, K], pairwise p(z_{t-1}, z_t | x) [..., T-1, K, K]
    (None unless asked for)."""

    log_prob: tf.Tensor
    unary: tf.Tensor
    pairwise: tf.Tensor | None


class _Chain(NamedTuple):
    """A flattened, time-major batch for the dynamic programs."""

    initial: tf.Tensor  # [B, K]
    transition: tf.Tensor  # [K, K], [B, K, K] or [T-1, B, K, K]
    emissions: tf.Tensor  # [T, B, K]
    mask: tf.Tensor | None  # bool [T, B]
    batch: _checks.BatchShape


def _log_softmax_columns(logits: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
    """log softmax(logits)[:, x_tb], time-major: logits [K, V], tokens int [B, T] -> [T, B, K].

    The same values as `tf.gather(tf.nn.log_softmax(logits), tokens)` (transposed), with the
    gradient written by hand: for an upstream gradient g [T, B, K],

        ∂L/∂logits[k, v] = Σ_{(t, b): x_tb = v} g[t, b, k] − softmax(logits)[k, v] Σ_{t, b} g[t, b, k],

    the softmax kept from the forward pass (its exps give the normaliser anyway) and the first
    term one row scatter-add into the dense second term, viewed as [V, K]. Autodiff through
    log_softmax and the gather instead scatters into [V, K] zeros and reads that transposed
    in an elementwise pass that recomputes the exps; under XLA:CPU at K = 256, V = 10000 this
    backward pass takes ~2× as long (bench/hmm_forward.py, log p + grad). Differentiable again
    (the gradient is linear in g, the softmax a function of the logits).

    Example:
      >>> logits = tf.constant([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
      >>> _log_softmax_columns(logits, tf.constant([[2, 0]])).shape
      TensorShape([2, 1, 2])
    """
    logits = tf.convert_to_tensor(logits)
    tokens = tf.transpose(tokens)  # [T, B]

    @tf.custom_gradient
    def lookup(logits):
        # −inf logits are exact zeros of the softmax; a row of −inf only gives −inf scores.
        shift = tf.stop_gradient(tf.reduce_max(logits, axis=-1, keepdims=True))  # [K, 1]
        shift = tf.where(tf.math.is_finite(shift), shift, tf.zeros_like(shift))
        probs = tf.exp(logits - shift)  # softmax · normaliser, [K, V]
        total = tf.reduce_sum(probs, axis=-1, keepdims=True)
        log_probs = logits - (shift + tf.math.log(total))  # log softmax, [K, V]
        scores = tf.transpose(tf.gather(log_probs, tokens, axis=1), [1, 2, 0])

        def grad(upstream):  # [T, B, K]
            num_states = tf.shape(logits)[0]
            dense = -probs * (tf.reduce_sum(upstream, [0, 1])[:, None] / total)  # [K, V]
            rows = tf.tensor_scatter_nd_add(
                tf.transpose(dense), tf.reshape(tokens, [-1, 1]),
                tf.reshape(upstream, [-1, num_states]))  # [V, K]
            return tf.transpose(rows)

        return scores, grad

    return lookup(logits)


def _gumbel(shape, seed, dtype: tf.DType) -> tf.Tensor:
    """Standard Gumbel noise from a stateless seed."""
    uniform = tf.random.stateless_uniform(shape, seed, minval=np.finfo(dtype.as_numpy_dtype).tiny,
                                          maxval=1.0, dtype=dtype)
    return -tf.math.log(-tf.math.log(uniform))


class HMM:
    """A batch of hidden Markov models (module docstring).

    Args:
      initial_logits: [..., K] logits of p(z_1).
      transition_logits: [..., K, K] logits of p(z_t | z_{t-1}) (rows: from-state).
      emission_logits: [..., K, V] logits of p(x_t | z_t).
      num_steps: T for `sample` (optional).
      semiring: for log_prob, marginals, entropy and posterior sampling: "auto" (the
        default: the scaled pass when the range rule of `_forward` guarantees it exact for
        every row, else the log pass for the batch), "scaled" (a synonym of "auto") or "log"
        (logsumexp). All are exact; they differ in speed only.
      validate_args: check values (token ids, masks, dynamic K) with assertions.
      name: name scope.
    """

    def __init__(self, initial_logits, transition_logits, emission_logits,
                 num_steps: int | None = None, semiring: str = "auto",
                 validate_args: bool = True, name: str = "HMM"):
        self._setup((initial_logits, transition_logits, emission_logits), False, False,
                    num_steps, semiring, validate_args, name)

    @classmethod
    def from_log_potentials(cls, initial_log_probs, transition_log_probs, emission_log_probs,
                            per_step_transitions: bool = False, semiring: str = "auto",
                            validate_args: bool = True, name: str = "HMM") -> "HMM":
        """An HMM scored per position, e.g. by a network (a neural HMM).

        Args:
          initial_log_probs: [..., K] initial log-potentials.
          transition_log_probs: [..., K, K] shared by all steps, or, with
            per_step_transitions=True, [..., T-1, K, K] (entry t-1 scores z_{t-1} -> z_t).
          emission_log_probs: [..., T, K], e.g. log p(x_t | z_t = k) of the observed tokens.
          per_step_transitions: whether transition_log_probs has a time axis (as TFP's
            `time_varying_transition_distribution`); never guessed from ranks, since
            [7, K, K] transitions may be a batch of 7 as well as 7 steps.
          semiring, validate_args, name: as the constructor.

        The methods then take x=None (the emission scores already are per position);
        log_prob returns log Σ_z exp score(z), which is log p(x) when the potentials are
        normalised log-probabilities.
        """
        hmm = cls.__new__(cls)
        hmm._setup((initial_log_probs, transition_log_probs, emission_log_probs), True,
                   bool(per_step_transitions), None, semiring, validate_args, name)
        return hmm

    def _setup(self, params, per_position: bool, per_step: bool, num_steps, semiring: str,
               validate_args: bool, name: str) -> None:
        self._semiring = check_semiring(semiring, SUM_SEMIRINGS)
        self._per_position = per_position
        self._num_steps = num_steps
        self._validate_args = validate_args
        self._name = name
        names = (("initial_log_probs", "transition_log_probs", "emission_log_probs")
                 if per_position else ("initial_logits", "transition_logits", "emission_logits"))
        with tf.name_scope(name):
            first = _checks.float_tensor(params[0], name=names[0])
            self._params = (first,) + tuple(_checks.float_tensor(p, first.dtype, n)
                                            for p, n in zip(params[1:], names[1:]))
        initial, transition, emission = self._params
        _checks.known_rank(initial, names[0], 1)
        _checks.known_rank(transition, names[1], 3 if per_step else 2)
        _checks.known_rank(emission, names[2], 2)
        self._per_step = per_step
        sizes = [(names[0], initial, -1), (names[1], transition, -2), (names[1], transition, -1),
                 (names[2], emission, -1 if per_position else -2)]
        _checks.same_size(sizes, "number of states K", validate_args=False)
        if self._per_step and None not in (transition.shape[-3], emission.shape[-2]) and (
                transition.shape[-3] != max(emission.shape[-2] - 1, 0)):
            raise ValueError(f"per-step {names[1]} must have T-1={emission.shape[-2] - 1} steps "
                             f"(shape [..., T-1, K, K]), got shape {transition.shape}")
        self._names = names
        self._sizes = sizes
        self._batch = _checks.BatchShape([(names[0], initial, 1),
                                          (names[1], transition, 3 if self._per_step else 2),
                                          (names[2], emission, 2)])

    @property
    def batch_shape(self) -> tf.TensorShape:
        """The parameters' broadcast batch shape."""
        return self._batch.static

    @property
    def num_states(self) -> int | None:
        return self._params[0].shape[-1]

    @property
    def dtype(self) -> tf.DType:
        return self._params[0].dtype

    @property
    def semiring(self) -> str:
        return self._semiring

    @property
    def validate_args(self) -> bool:
        return self._validate_args

    @property
    def name(self) -> str:
        return self._name

    def _log_parameters(self, emission: bool = True) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """log π [..., K], log A [..., K, K], log E [..., K, V] (or the potentials as given);
        emission=False leaves the emission logits unnormalised."""
        checks = _checks.same_size(self._sizes, "number of states K", self._validate_args)
        params = _checks.after(checks, *self._params)
        if self._per_position:
            return params
        return tuple(tf.nn.log_softmax(p, axis=-1) if i < 2 or emission else p
                     for i, p in enumerate(params))

    def _chain(self, x, mask, params=None, transitions: str = "native") -> _Chain:
        """Flattens a batch into a time-major chain.

        params: the normalised log-parameters (`_log_parameters()`), or None for those
        computed here, a single [K, V] emission matrix then read by `_log_softmax_columns`
        from its logits (the faster gradient). transitions: "native" keeps shared transitions
        [K, K] (one matmul per step), "per_row" gives at least [B, K, K] (a gradient per row).
        """
        emission_logits = None
        if params is None:
            lookup = not self._per_position and self._params[2].shape.rank == 2
            params = self._log_parameters(emission=not lookup)
            emission_logits = params[2] if lookup else None
        initial, transition, emission = params
        trans_rank = 3 if self._per_step else 2
        if self._per_position:
            if x is not None:
                raise ValueError("this HMM was built by from_log_potentials: its emission scores "
                                 "are per position already; call its methods with x=None")
            mask = _checks.as_mask(mask, emission[..., 0])
            parts = [(self._names[0], initial, 1), (self._names[1], transition, trans_rank),
                     (self._names[2], emission, 2)]
        else:
            if x is None:
                raise ValueError("x (int token ids [..., T]) is required")
            x = tf.convert_to_tensor(x)
            _checks.known_rank(x, "x", 1)
            mask = _checks.as_mask(mask, x)
            x, = _checks.after(_checks.assert_tokens(x, mask, tf.shape(emission)[-1],
                                                     self._validate_args), x)
            parts = [(self._names[0], initial, 1), (self._names[1], transition, 2),
                     (self._names[2], emission, 2), ("x", x, 1)]
        mask, = _checks.after(_checks.assert_prefix_mask(mask, self._validate_args), mask)
        batch = _checks.BatchShape(parts + ([("mask", mask, 1)] if mask is not None else []))
        flat_mask = None if mask is None else tf.transpose(batch.flatten(mask, 1))  # [T, B]

        if self._per_position:
            emissions = tf.transpose(batch.flatten(emission, 2), [1, 0, 2])  # [T, B, K]
        else:
            tokens = batch.flatten(x, 1)  # [B, T]
            if mask is not None:
                tokens = tf.where(tf.transpose(flat_mask), tokens, tf.zeros_like(tokens))
            if emission_logits is not None:
                emissions = _log_softmax_columns(emission_logits, tokens)  # [T, B, K]
            elif emission.shape.rank == 2:  # one [K, V] matrix: gather its columns
                emissions = tf.transpose(tf.gather(emission, tf.transpose(tokens), axis=1),
                                         [1, 2, 0])  # [K, T, B] -> [T, B, K]
            else:
                emissions = tf.transpose(
                    tf.gather(batch.flatten(emission, 2), tokens, axis=2, batch_dims=1),
                    [2, 0, 1])  # [B, K, T] -> [T, B, K]

        if self._per_step:
            transition = tf.transpose(batch.flatten(transition, 3), [1, 0, 2, 3])
        elif transition.shape.rank > 2 or transitions == "per_row":
            transition = batch.flatten(transition, 2)  # [B, K, K]
        return _Chain(batch.flatten(initial, 1), transition, emissions, flat_mask, batch)

    def log_prob(self, x=None, mask=None) -> tf.Tensor:
        """log p(x) [...] (x: int [..., T], mask: [..., T]); x=None for a potentials-HMM."""
        with tf.name_scope(f"{self._name}_log_prob"):
            chain = self._chain(x, mask)
            log_z = forward(chain.initial, [chain.transition], chain.emissions, chain.mask,
                            self._semiring).log_z
            return chain.batch.unflatten(log_z)

    def posterior(self, x=None, mask=None, pairwise: bool = False) -> Posterior:
        """log p(x) with the posterior marginals, from one forward pass and its gradient.

        Returns Posterior(log_prob [...], unary [..., T, K], pairwise [..., T-1, K, K] or None).
        unary is ∂ log Z / ∂ φ; pairwise = unary_t[j] p(z_{t-1} = i | z_t = j, x_{<t}) from the
        same forward pass (`_backtrack.pairwise_marginals`), equal to ∂ log Z / ∂ θ_t.
        """
        with tf.name_scope(f"{self._name}_posterior"):
            chain = self._chain(x, mask)
            result, grads = log_partition_gradients(chain.initial, [chain.transition],
                                                    chain.emissions, chain.mask, self._semiring)
            unary = grads["emissions"]  # [T, B, K]
            edges = None
            if pairwise:
                edges = chain.batch.unflatten(tf.transpose(pairwise_marginals(
                    result.log_filtered, chain.transition, unary), [1, 0, 2, 3]))
            return Posterior(chain.batch.unflatten(result.log_z),
                             chain.batch.unflatten(tf.transpose(unary, [1, 0, 2])), edges)

    def posterior_marginals(self, x=None, mask=None) -> tuple[tf.Tensor, tf.Tensor]:
        """(unary p(z_t | x) [..., T, K], pairwise p(z_{t-1}, z_t | x) [..., T-1, K, K])."""
        result = self.posterior(x, mask, pairwise=True)
        return result.unary, result.pairwise

    def posterior_entropy(self, x=None, mask=None) -> tf.Tensor:
        """H[p(z | x)] [...] = log Z - Σ θ · ∂ log Z / ∂ θ; differentiable (second order).

        The marginals ∂ log Z / ∂ θ come from the hand-written backward pass; the entropy's
        gradient is autodiff through that pass (a loop whose semiring is chosen per step, so
        it compiles under XLA in every semiring).
        """
        with tf.name_scope(f"{self._name}_posterior_entropy"):
            chain = self._chain(x, mask, transitions="per_row")
            result, grads = log_partition_gradients(
                chain.initial, [chain.transition], chain.emissions, chain.mask, self._semiring,
                ("initial", "transitions", "emissions"))
            trans_axes = [0, 2, 3] if chain.transition.shape.rank == 4 else [1, 2]
            # A −inf potential (a forbidden move) has a zero marginal and adds nothing; it is
            # replaced by 0 through a select, since −inf · 0 (or its gradient) would be NaN.
            finite = [tf.where(tf.math.is_finite(p), p, tf.zeros_like(p))
                      for p in (chain.initial, chain.transition, chain.emissions)]
            expected_score = (
                tf.reduce_sum(finite[0] * grads["initial"], -1)
                + tf.reduce_sum(finite[1] * grads["transitions"][0], trans_axes)
                + tf.reduce_sum(finite[2] * grads["emissions"], [0, 2]))
            return chain.batch.unflatten(result.log_z - expected_score)

    def expected_counts(self, x, mask=None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Expected sufficient statistics summed over the batch (the E step of EM).

        Returns (E[#z_1 = k] [..., K], E[#(z_{t-1}, z_t) = (i, j)] [..., K, K],
        E[#(z_t, x_t) = (k, v)] [..., K, V]), each with its parameter's shape (summed over the
        rows that share it): the gradient of Σ log p(x) w.r.t. log π, log A, log E. An M step
        is then `logits = log(counts + pseudo_count)`.
        """
        if self._per_position:
            raise ValueError("expected_counts needs an HMM built from logits (not potentials)")
        with tf.name_scope(f"{self._name}_expected_counts"):
            params = self._log_parameters()
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(params)
                chain = self._chain(x, mask, params)
                log_z = forward(chain.initial, [chain.transition], chain.emissions, chain.mask,
                                self._semiring).log_z
            return tuple(tape.gradient(log_z, params,
                                       unconnected_gradients=tf.UnconnectedGradients.ZERO))

    def viterbi(self, x=None, mask=None) -> tf.Tensor:
        """argmax_z p(z | x): int32 [..., T], 0 at padded positions."""
        with tf.name_scope(f"{self._name}_viterbi"):
            chain = self._chain(x, mask)
            scores = forward(chain.initial, [chain.transition], chain.emissions, chain.mask,
                             "max").log_filtered
            path = backtrack(scores, chain.transition, chain.mask)  # [T, B]
            return chain.batch.unflatten(tf.transpose(path))

    def posterior_sample(self, x=None, mask=None, n: int = 1, seed=None) -> tf.Tensor:
        """n exact draws z ~ p(z | x) by forward-filtering backward-sampling: int32 [n, ..., T]."""
        with tf.name_scope(f"{self._name}_posterior_sample"):
            chain = self._chain(x, mask)
            filtered = forward(chain.initial, [chain.transition], chain.emissions, chain.mask,
                               self._semiring).log_filtered
            filtered = tf.tile(filtered, [1, n, 1])  # [T, n * B, K], sample-major
            transition = chain.transition
            if transition.shape.rank > 2:
                batch_axis = transition.shape.rank - 3
                transition = tf.tile(transition, [n if a == batch_axis else 1
                                                  for a in range(transition.shape.rank)])
            mask_n = None if chain.mask is None else tf.tile(chain.mask, [1, n])
            noise = _gumbel(tf.shape(filtered), tfp.random.sanitize_seed(seed), self.dtype)
            path = backtrack(filtered, transition, mask_n, noise)  # [T, n * B]
            path = tf.transpose(tf.reshape(path, [tf.shape(path)[0], n, -1]), [1, 2, 0])
            return chain.batch.unflatten(path, sample_rank=1)  # [n, ..., T]

    def sample(self, n: int = 1, seed=None, num_steps: int | None = None) -> tf.Tensor:
        """n token sequences x ~ p(x) by ancestral sampling: int32 [n, ..., T]."""
        if self._per_position:
            raise ValueError("sample needs an HMM built from logits (potentials-HMMs have no "
                             "emission distribution over tokens)")
        num_steps = num_steps or self._num_steps
        if not num_steps:
            raise ValueError("sample needs num_steps (here or in the constructor)")
        with tf.name_scope(f"{self._name}_sample"):
            log_init, log_trans, log_emit = (self._batch.flatten(p, rank) for p, rank in
                                             zip(self._log_parameters(), (1, 2, 2)))
            state_seed, token_seed = tfp.random.split_seed(tfp.random.sanitize_seed(seed), 2)
            noise = _gumbel(tf.stack([num_steps, tf.shape(log_init)[0], n, tf.shape(log_init)[1]]),
                           state_seed, self.dtype)  # [T, B, n, K]
            first = tf.argmax(log_init[:, None, :] + noise[0], axis=-1, output_type=tf.int32)

            def step(state, step_noise):  # state: [B, n]
                return tf.argmax(tf.gather(log_trans, state, batch_dims=1) + step_noise,
                                 axis=-1, output_type=tf.int32)

            states = tf.concat([first[None], tf.scan(step, noise[1:], initializer=first)], 0)
            logits = tf.gather(log_emit, tf.transpose(states, [1, 2, 0]), batch_dims=1)
            tokens = tf.random.stateless_categorical(
                tf.reshape(logits, [-1, tf.shape(log_emit)[-1]]), 1, token_seed,
                dtype=tf.int32)
            tokens = tf.transpose(tf.reshape(tokens, tf.shape(logits)[:3]), [1, 0, 2])
            return self._batch.unflatten(tokens, sample_rank=1)  # [n, ..., T]
