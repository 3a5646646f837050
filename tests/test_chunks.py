"""Per-draw maps in chunks (`bsts._chunks`): equal to one `jax.vmap`, at any chunk size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bsts
from bsts import _chunks


def test_chunk_size_fits_the_budget():
    assert _chunks.chunk_size(300, 100) == 300  # all at once
    assert _chunks.chunk_size(300, _chunks.CHUNK_ELEMENTS // 7) == 7
    assert _chunks.chunk_size(300, 10 * _chunks.CHUNK_ELEMENTS) == 1  # never below one


@pytest.mark.parametrize("elements_per_item", [1, _chunks.CHUNK_ELEMENTS // 3])
def test_map_in_chunks_equals_vmap(rng, elements_per_item):
    # 10 items in chunks of 3 leave a last chunk of 1 (padded); pytrees in and out.
    x = {"a": jnp.asarray(rng.normal(size=(10, 4))), "b": jnp.asarray(rng.normal(size=10))}
    keys = jax.random.split(jax.random.PRNGKey(0), 10)

    def fn(item, key):
        return {"sum": item["a"].sum() * item["b"], "noise": jax.random.normal(key, (2,))}

    expected = jax.vmap(fn)(x, keys)
    actual = _chunks.map_in_chunks(fn, (x, keys), elements_per_item=elements_per_item)
    jax.tree_util.tree_map(np.testing.assert_allclose, actual, expected)


@pytest.fixture(scope="module")
def nile_nuts():
    data = bsts.datasets.load("nile")
    model = bsts.LocalLevel()
    return bsts.fit(model, data, "volume", num_warmup=30, num_samples=20, seed=1)


def test_posterior_per_draw_results_do_not_depend_on_chunking(nile_nuts, monkeypatch):
    # The per-draw results a user sees (pointwise log-likelihood for ArviZ, state paths
    # for decompose, forecasts) are the same whether the draws fit one chunk or many.
    whole = (
        nile_nuts.pointwise_log_likelihood(),
        nile_nuts.states(seed=2),
        bsts.forecast(nile_nuts, horizon=5, seed=3).to_pandas(),
    )
    monkeypatch.setattr(_chunks, "CHUNK_ELEMENTS", 3 * nile_nuts.series.num_timesteps)
    assert _chunks.chunk_size(40, nile_nuts.series.num_timesteps) == 3
    chunked = (
        nile_nuts.pointwise_log_likelihood(),
        nile_nuts.states(seed=2),
        bsts.forecast(nile_nuts, horizon=5, seed=3).to_pandas(),
    )
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-12)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked[2].to_numpy(), whole[2].to_numpy(), rtol=1e-10)
