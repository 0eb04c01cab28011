"""LDPC syndrome coding for Slepian–Wolf: matrices, BP decoder, LDPCA, Hamming by hand."""

import numpy as np
import pytest
import scipy.sparse as sp

from toy_sources.bounds import binary_entropy
from toy_sources.codes.hamming import HAMMING_H, exhaustive_check, hamming_sw_decode, hamming_syndrome
from toy_sources.codes.ldpc import decode_syndrome, dsbs_llr, syndrome, tanner_graph
from toy_sources.codes.ldpc_accumulate import LDPCACode, balanced_tx_order
from toy_sources.codes.ldpc_experiments import (
    FAMILY_CRC_BITS,
    PypiSyndromeBP,
    cached_ldpca_code,
    sample_dsbs,
    simulate_adaptive,
    simulate_fixed,
)
from toy_sources.codes.ldpc_matrix import (
    column_degrees,
    count_4_cycles,
    peg_ldpc,
    peg_matrix,
    resolve_degree_distribution,
    row_degrees,
    variable_degree_sequence,
)


@pytest.fixture(scope="module")
def H_half():
    return peg_ldpc(1000, 0.5, "rsu_dl8", seed=3)


@pytest.fixture(scope="module")
def small_ldpca():
    return LDPCACode(1000, levels=50, seed=1)


# ---------------------------------------------------------------- matrices
@pytest.mark.parametrize("lam", ["regular3", "rsu_dl8", "rsu_dl8_stable"])
def test_peg_has_requested_degrees_and_no_4_cycles(lam):
    n, m = 1200, 600
    degs = variable_degree_sequence(n, lam)
    H = peg_matrix(degs, m, seed=0)
    assert H.shape == (m, n)
    # column weights are exactly the requested sequence (PEG processes sorted degrees)
    assert np.array_equal(np.sort(column_degrees(H)), np.sort(degs))
    # realised edge-perspective distribution matches lambda to rounding
    lam_d = resolve_degree_distribution(lam)
    counts = np.bincount(degs)
    edges = degs.sum()
    for d, frac in lam_d.items():
        assert abs(d * counts[d] / edges - frac) < 5e-3
    assert count_4_cycles(H) == 0
    # PEG always picks a lowest-degree check: row weights differ by at most 2
    r = row_degrees(H)
    assert r.max() - r.min() <= 2


def test_regular_peg_column_weights_and_mean_row_weight():
    H = peg_ldpc(600, 0.5, "regular3", seed=2)
    assert set(column_degrees(H).tolist()) == {3}
    r = row_degrees(H)
    assert r.mean() == 6.0 and r.max() - r.min() <= 2


def test_peg_row_blocks_forbid_two_edges_in_a_block():
    blocks = np.arange(400) // 20
    H = peg_matrix(variable_degree_sequence(400, "rsu_dl8"), 400, seed=1, row_blocks=blocks)
    Hc = sp.csc_matrix(H)
    for v in range(400):
        b = blocks[Hc.indices[Hc.indptr[v]:Hc.indptr[v + 1]]]
        assert b.size == np.unique(b).size


def test_count_4_cycles_closed_form():
    # all-ones 2 x k matrix: one pair of rows sharing k columns -> C(k, 2) 4-cycles
    assert count_4_cycles(np.ones((2, 5), dtype=int)) == 10
    assert count_4_cycles(np.ones((3, 3), dtype=int)) == 3 * 3


def test_bad_degree_distribution_names_the_options():
    with pytest.raises(ValueError, match="unknown degree distribution 'nope'.*regular3"):
        variable_degree_sequence(10, "nope")
    with pytest.raises(ValueError, match="var_degrees must lie in"):
        peg_matrix([5, 5], 3)


# ---------------------------------------------------------------- encoder / decoder
def test_syndrome_matches_sparse_product(H_half):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, 1000)
    assert np.array_equal(syndrome(H_half, x), (H_half.astype(int) @ x) % 2)


def test_noiseless_side_information_decodes_instantly(H_half):
    rng = np.random.default_rng(1)
    for p in (0.01, 0.1, 0.3):
        x = rng.integers(0, 2, 1000).astype(np.uint8)
        res = decode_syndrome(H_half, syndrome(H_half, x), dsbs_llr(x, p))
        assert res.success and res.iterations == 0
        assert np.array_equal(res.x_hat, x)


@pytest.mark.parametrize("algorithm", ["sum_product", "min_sum", "sum_product_table"])
def test_success_means_syndrome_satisfied(H_half, algorithm):
    g = tanner_graph(H_half)
    rng = np.random.default_rng(2)
    n_ok = n_fail = 0
    for p in (0.04, 0.08, 0.11, 0.14):  # from easy to beyond the code's threshold
        for _ in range(4):
            x, y = sample_dsbs(p, 1000, rng)
            s = syndrome(g, x)
            x_hat, ok = decode_syndrome(g, s, dsbs_llr(y, p), 60, algorithm=algorithm)
            if ok:
                n_ok += 1
                assert np.array_equal(syndrome(g, x_hat), s)
            else:
                n_fail += 1
                assert not np.array_equal(syndrome(g, x_hat), s)
    assert n_ok > 0 and n_fail > 0  # both branches were exercised


def test_phi_table_matches_closed_form():
    from toy_sources.codes.ldpc import _PHI_BASE, _PHI_SHIFT, _PHI_TAB

    t = np.geomspace(1e-6, 25.0, 2000)
    k = (t.view(np.int64) >> _PHI_SHIFT) - _PHI_BASE
    exact = -np.log(np.tanh(t / 2))
    # cells are <= t/128 wide, read at their geometric midpoint: |phi'(t)| t * 0.4 % bounds the error
    err = np.abs(_PHI_TAB[k] - exact)
    assert np.all(err <= 0.004 * np.abs(np.gradient(exact, t)) * t + 1e-12)
    assert np.allclose(-np.log(np.tanh(exact / 2)), t, rtol=1e-6)


def test_table_and_exact_sum_product_decide_alike(H_half):
    g = tanner_graph(H_half)
    rng = np.random.default_rng(12)
    agree = 0
    for p in (0.06, 0.09, 0.1):
        for _ in range(4):
            x, y = sample_dsbs(p, 1000, rng)
            s = syndrome(g, x)
            a = decode_syndrome(g, s, dsbs_llr(y, p), 60, algorithm="sum_product")
            b = decode_syndrome(g, s, dsbs_llr(y, p), 60, algorithm="sum_product_table")
            agree += a.success == b.success
            if a.success and b.success:
                assert np.array_equal(a.x_hat, b.x_hat)
    assert agree >= 11


def test_decoder_corrects_at_low_noise(H_half):
    rng = np.random.default_rng(3)
    x, y = sample_dsbs(0.03, 1000, rng)  # h(0.03) = 0.19 << rate 0.5
    res = decode_syndrome(H_half, syndrome(H_half, x), dsbs_llr(y, 0.03))
    assert res.success and np.array_equal(res.x_hat, x) and res.iterations > 0


def test_ber_falls_with_rate_on_fixed_seed():
    p = 0.07  # h(p) = 0.366
    bers = []
    for m in (380, 460, 600):
        H = peg_matrix(variable_degree_sequence(1000, "rsu_dl8"), m, seed=0)
        bers.append(simulate_fixed(H, p, 12, seed=7, max_iter=60)["ber"])
    assert bers[0] > bers[1] >= bers[2]
    assert bers[0] > 1e-3 and bers[2] == 0.0


def test_decoder_input_errors(H_half):
    s = np.zeros(500, dtype=np.uint8)
    with pytest.raises(ValueError, match="llr_prior must be a 1-D array of length 1000"):
        decode_syndrome(H_half, s, np.zeros(999))
    with pytest.raises(ValueError, match="llr_prior contains NaN"):
        decode_syndrome(H_half, s, np.full(1000, np.nan))
    with pytest.raises(ValueError, match="s \\(syndrome\\) must have length 500"):
        decode_syndrome(H_half, s[:-1], np.zeros(1000))
    with pytest.raises(ValueError, match="unknown algorithm 'bp'"):
        decode_syndrome(H_half, s, np.zeros(1000), algorithm="bp")
    with pytest.raises(ValueError, match="only 0/1"):
        syndrome(H_half, np.full(1000, 2))


def test_ldpc_package_agrees_on_easy_blocks(H_half):
    """Same matrix, same data: both BP decoders recover x at low noise."""
    rng = np.random.default_rng(4)
    theirs = PypiSyndromeBP(H_half, 0.03, max_iter=50)
    for _ in range(3):
        x, y = sample_dsbs(0.03, 1000, rng)
        s = syndrome(H_half, x)
        x1, ok1 = decode_syndrome(H_half, s, dsbs_llr(y, 0.03), 50)
        x2, ok2, _ = theirs(s, y)
        assert ok1 and ok2
        assert np.array_equal(x1, x) and np.array_equal(x2, x)


# ---------------------------------------------------------------- rate-adaptive (LDPCA)
def test_tx_order_is_nested_permutation():
    for period in (1, 4, 50, 100):
        order = balanced_tx_order(period)
        assert sorted(order.tolist()) == list(range(period)) and order[0] == period - 1


def test_merged_syndrome_is_syndrome_of_merged_matrix(small_ldpca):
    code = small_ldpca
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2, code.n).astype(np.uint8)
    feed = code.encode(x)
    prev = None
    for level in (1, 7, 25, 50):
        pos = code.positions(level)
        assert pos.size == code.bits_at(level) == level * code.n // code.levels
        if prev is not None:
            assert set(prev) <= set(pos)  # nested increments
        prev = pos
        s = code.merged_syndrome(feed.request(level))
        assert np.array_equal(s, syndrome(code.merged_matrix(level), x))
    # the top level is the base code itself
    assert np.array_equal(code.merged_matrix(code.levels).toarray(), code.H0.toarray())
    # no edge cancels when rows merge: every level keeps all edges of H0
    for level in (1, 10, 50):
        assert code.merged_matrix(level).nnz == code.H0.nnz


def test_level_graph_and_edge_map_match_merged_matrix(small_ldpca):
    code = small_ldpca
    H0 = sp.csr_matrix(code.H0)
    h0_rows = np.repeat(np.arange(code.n), np.diff(H0.indptr))
    for level in (1, 13, 37, 50):
        g, ref = code.graph(level), tanner_graph(code.merged_matrix(level))
        assert np.array_equal(g.chk_ptr, ref.chk_ptr) and np.array_equal(g.edge_var, ref.edge_var)
        emap = code.edge_map(level)
        # every merged edge is one H0 edge: same variable, a row inside its merged group
        assert np.array_equal(H0.indices[emap], g.edge_var)
        pos = code.positions(level)
        check_of_edge = np.repeat(np.arange(g.m), np.diff(g.chk_ptr))
        assert np.array_equal(np.searchsorted(pos, h0_rows[emap]), check_of_edge)
        assert np.unique(emap).size == H0.nnz


def test_warm_start_decodes_and_matches_cold_start_rate(small_ldpca):
    code = small_ldpca
    rng = np.random.default_rng(9)
    for p in (0.04, 0.1):
        x, y = sample_dsbs(p, code.n, rng)
        llr = dsbs_llr(y, p)
        warm = code.decode(code.encode(x), llr, warm_start=True)
        cold = code.decode(code.encode(x), llr, warm_start=False)
        assert warm.success and np.array_equal(warm.x_hat, x)
        assert cold.success and np.array_equal(cold.x_hat, x)
        assert abs(warm.level - cold.level) <= 3


def test_c2v_warm_start_argument(H_half):
    g = tanner_graph(H_half)
    rng = np.random.default_rng(10)
    x, y = sample_dsbs(0.03, g.n, rng)
    s = syndrome(g, x)
    c2v = np.zeros(g.n_edges)
    r1 = decode_syndrome(g, s, dsbs_llr(y, 0.03), 50, c2v=c2v)
    assert r1.success and np.array_equal(r1.x_hat, x)
    assert np.any(c2v != 0)  # final messages written back
    # resuming from converged messages: already consistent, no iteration needed
    r2 = decode_syndrome(g, s, dsbs_llr(y, 0.03), 50, c2v=c2v)
    assert r2.success and r2.iterations == 0 and np.array_equal(r2.x_hat, x)
    with pytest.raises(ValueError, match="c2v must be a float64 array"):
        decode_syndrome(g, s, dsbs_llr(y, 0.03), 5, c2v=np.zeros(3))


def test_rate_adaptive_easy_case(small_ldpca):
    code = small_ldpca
    rng = np.random.default_rng(6)
    p = 0.03
    x, y = sample_dsbs(p, code.n, rng)
    res = code.decode(code.encode(x), dsbs_llr(y, p))
    assert res.success and np.array_equal(res.x_hat, x)
    assert res.rate == pytest.approx(code.rate(res.level))
    assert res.level >= code.start_level_for(dsbs_llr(y, p))
    assert binary_entropy(p) < res.rate < 0.6
    # identical side information: decoded from the first increment
    res0 = code.decode(code.encode(x), dsbs_llr(x, p), start_level=1)
    assert res0.success and res0.level == 1 and np.array_equal(res0.x_hat, x)


def _assert_level_matches_merged_matrix(code, feed, x, level):
    """The received syndrome, the decoder's graph and its map to H0 edges agree with the
    merged matrix of ``level``."""
    s = code.merged_syndrome(feed.request(level))
    assert np.array_equal(s, syndrome(code.merged_matrix(level), x))
    g, emap = code.graph(level), code.edge_map(level)
    ref = tanner_graph(code.merged_matrix(level))
    assert np.array_equal(g.chk_ptr, ref.chk_ptr) and np.array_equal(g.edge_var, ref.edge_var)
    assert np.array_equal(sp.csr_matrix(code.H0).indices[emap], g.edge_var)


def test_substeps_split_each_level_into_nested_increments(small_ldpca):
    S = 4
    fine = LDPCACode(small_ldpca.n, 50, H0=small_ldpca.H0, seed=1, substeps=S)
    assert fine.levels == 50 * S and fine.period == 50 and fine.substeps == S
    assert fine.rate_step == pytest.approx(small_ldpca.rate_step / S)
    rng = np.random.default_rng(31)
    x = rng.integers(0, 2, fine.n).astype(np.uint8)
    feed = fine.encode(x)
    prev = np.array([], dtype=np.int64)
    for level in range(1, fine.levels + 1):
        pos = fine.positions(level)
        assert pos.size == fine.bits_at(level) and np.all(np.diff(pos) > 0)
        assert set(prev) < set(pos)  # every rung adds bits, none is taken back
        if level % S == 0:  # whole levels are those of the code without substeps
            assert np.array_equal(pos, small_ldpca.positions(level // S))
        prev = pos
    assert fine.bits_at(fine.levels) == fine.rows
    for level in (1, 5, 6, 7, 99, 150, 199):
        _assert_level_matches_merged_matrix(fine, feed, x, level)
    # start: the first rung whose rate reaches the prior's conditional entropy
    p = 0.07
    k = fine.start_level_for(dsbs_llr(np.zeros(fine.n, dtype=np.uint8), p))
    assert fine.bits_at(k) / fine.n >= binary_entropy(p) > fine.bits_at(k - 1) / fine.n


def test_substeps_stop_closer_to_the_rate_each_block_needs(small_ldpca):
    fine = LDPCACode(small_ldpca.n, 50, H0=small_ldpca.H0, seed=1, substeps=4)
    coarse = simulate_adaptive(small_ldpca, 0.06, 12, seed=32)
    finer = simulate_adaptive(fine, 0.06, 12, seed=32)
    assert finer["substeps"] == 4 and coarse["substeps"] == 1
    assert finer["ber"] == coarse["ber"] == 0.0
    assert finer["rate"] < coarse["rate"]  # same blocks: no whole-level overshoot
    assert finer["attempts"] > coarse["attempts"]  # paid for with more BP attempts


def test_feed_accepts_only_a_satisfied_syndrome_with_the_crc_sent(small_ldpca):
    x, _ = sample_dsbs(0.05, small_ldpca.n, np.random.default_rng(34))
    feed = small_ldpca.encode(x)
    assert feed.accepts(x, True)
    assert not feed.accepts(x, False)
    wrong = x.copy()
    wrong[7] ^= 1  # a CRC detects every single-bit error
    assert not feed.accepts(wrong, True)


def test_ladder_restarts_bp_after_a_word_the_crc_rejects(small_ldpca):
    """A CRC that cannot match (the encoder's CRC is corrupted) makes every converged word a
    rejected one: the decoder's state is reset each time, and the ladder ends at the top."""
    code = small_ldpca
    rng = np.random.default_rng(33)
    x, y = sample_dsbs(0.05, code.n, rng)
    llr = dsbs_llr(y, 0.05)
    feed = code.encode(x)
    feed.crc ^= 1
    bp = code.level_decoder(llr)
    resets = []

    def level_decoder(level, s):
        return bp(level, s)

    level_decoder.reset = lambda: (resets.append(1), bp.reset())
    res = code.decode(feed, llr, level_decoder=level_decoder)
    assert not res.success and res.level == code.levels
    converged = [h for h in res.history if h[1]]
    assert converged and len(resets) == len(converged) - (1 if res.history[-1][1] else 0)
    assert np.array_equal(res.x_hat, x)  # the right word, rejected only by the corrupted CRC


def test_level_decoder_reset_is_a_cold_start(small_ldpca):
    code = small_ldpca
    rng = np.random.default_rng(34)
    x, y = sample_dsbs(0.08, code.n, rng)
    llr, feed = dsbs_llr(y, 0.08), code.encode(x)
    s20, s30 = (code.merged_syndrome(feed.request(k)) for k in (20, 30))
    bp = code.level_decoder(llr)
    bp(20, s20)  # leaves messages behind
    bp.reset()
    again = bp(30, s30)
    fresh = code.level_decoder(llr)(30, s30)
    assert np.array_equal(again[0], fresh[0]) and again[1:] == fresh[1:]


def test_rate_adaptive_rate_grows_with_noise(small_ldpca):
    rates = [simulate_adaptive(small_ldpca, p, 4, seed=8, start_margin=2)["rate"]
             for p in (0.02, 0.06, 0.12)]
    assert rates[0] < rates[1] < rates[2]


def test_grouped_peg_with_singleton_groups_is_plain_peg():
    deg = variable_degree_sequence(600, "ldpca_d15")
    blocks = np.arange(300) // 20
    plain = peg_matrix(deg, 300, seed=3, row_blocks=blocks)
    grouped = peg_matrix(deg, 300, seed=3, row_blocks=blocks, check_groups=np.arange(300) * 7)
    assert (plain != grouped).nnz == 0


def test_grouped_peg_on_every_variable_removes_most_merged_four_cycles():
    """peg_level_max_degree=None (the family's low and middle members) places every edge by
    PEG on the merged checks of peg_level: measured at n = 2000, ldpca_d15, level 13 of 50,
    180 4-cycles instead of 5982 (degree-2 only) and 5841 (plain PEG), and still fewer above."""
    plain = LDPCACode(2000, 50, "ldpca_d15", seed=0)
    deg2 = LDPCACode(2000, 50, "ldpca_d15", seed=0, peg_level=13, peg_level_max_degree=2)
    every = LDPCACode(2000, 50, "ldpca_d15", seed=0, peg_level=13, peg_level_max_degree=None)
    for level in (13, 23):
        assert every.four_cycles(level) < 0.1 * min(plain.four_cycles(level), deg2.four_cycles(level))
    # a higher level splits merged checks, and two checks of one variable are never merged
    # (they lie in different blocks): its 4-cycles are a subset of a lower level's
    assert every.four_cycles(50) <= every.four_cycles(23) <= every.four_cycles(13)
    assert np.array_equal(np.sort(every.H0.sum(axis=0).A1), np.sort(plain.H0.sum(axis=0).A1))
    # by hand: two variables sharing rows 0 and 1 of a 3 x 3 matrix (one level, no merging)
    tiny = LDPCACode(3, 1, "regular3", rows=3, H0=sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]])))
    assert tiny.four_cycles(1) == 1


def test_degree2_cycles_kept_long_in_merged_graphs():
    """Degree-2 variables placed by PEG on the merged checks of level 23 close no cycle of
    <= 6 of them at that level or above (a cycle = a low-weight codeword); plain PEG on
    the rows of H0 leaves some (measured: 3 variables on 3-cycles at level 23)."""
    plain = LDPCACode(2000, 50, "sw_mid_d15", seed=0)
    kept = LDPCACode(2000, 50, "sw_mid_d15", seed=0, peg_level=23, peg_level_max_degree=2)
    assert sum(plain.degree2_cycles(23, 4).values()) > 0
    for level in (23, 35, 50):
        assert kept.degree2_cycles(level, 6) == {}
    # both codes have the requested degrees, and the constrained one still decodes
    assert np.array_equal(np.sort(kept.H0.sum(axis=0).A1), np.sort(plain.H0.sum(axis=0).A1))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, 2000); y = x ^ (rng.random(2000) < 0.1)
    res = kept.decode(kept.encode(x), dsbs_llr(y, 0.1))
    assert res.success and np.array_equal(res.x_hat, x)
    with pytest.raises(ValueError, match="peg_level"):
        LDPCACode(2000, 50, "sw_mid_d15", peg_level=51)
    with pytest.raises(ValueError, match="peg_level_max_degree"):
        LDPCACode(2000, 50, "sw_mid_d15", peg_level=20, peg_level_max_degree=0)
    with pytest.raises(ValueError, match="max_len"):
        kept.degree2_cycles(23, 1)


def test_start_margin_in_rate_is_converted_to_levels_of_the_code(small_ldpca):
    # small_ldpca: 50 levels of 1000 rows over n = 1000, a rate step of 0.02
    r = simulate_adaptive(small_ldpca, 0.06, 3, seed=8, start_margin_rate=0.04)
    assert r["start_margin"] == 2 and r["start_margin_rate"] == 0.04
    assert r["ber"] == 0.0
    # the margin only moves the start level: with none, every block starts at the bound
    r0 = simulate_adaptive(small_ldpca, 0.06, 3, seed=8)
    assert r0["start_margin"] is None and r0["attempts"] >= r["attempts"]
    with pytest.raises(ValueError, match="not both"):
        simulate_adaptive(small_ldpca, 0.06, 1, start_margin=2, start_margin_rate=0.04)
    with pytest.raises(ValueError, match="start_margin_rate"):
        simulate_adaptive(small_ldpca, 0.06, 1, start_margin_rate=-0.1)


def test_oracle_level_decodes_once_per_block_beside_the_ladder(small_ldpca):
    """The oracle decode (one cold BP at the level the ladder stopped at) is measured apart:
    the ladder's figures are those of a run without it."""
    plain = simulate_adaptive(small_ldpca, 0.06, 6, seed=8)
    r = simulate_adaptive(small_ldpca, 0.06, 6, seed=8, oracle_level=True)
    for key in ("rate", "attempts", "iterations", "final_iterations", "ber", "crc_rejections"):
        assert r[key] == plain[key]
    assert "oracle_iterations" not in plain
    # from scratch BP lacks the messages of the failed attempts, so it may fail where the
    # warm-started ladder succeeded, but it never sees fewer syndrome bits
    assert 0.0 < r["oracle_success_rate"] <= 1.0
    assert r["oracle_iterations"] > 0 and r["oracle_mbit_per_cpu_s"] > 0
    with pytest.raises(ValueError, match="oracle_level"):
        simulate_adaptive(small_ldpca, 0.06, 1, decoder="ldpc", oracle_level=True)


def test_ldpca_input_errors(small_ldpca):
    with pytest.raises(ValueError, match="must be a multiple of levels"):
        LDPCACode(1001, levels=50)
    with pytest.raises(ValueError, match="use rows >= 15 \\* levels"):
        LDPCACode(700, levels=100)
    with pytest.raises(ValueError, match="level must be an int in \\[1, 50\\]"):
        small_ldpca.positions(51)
    with pytest.raises(ValueError, match="llr_prior must have shape"):
        small_ldpca.decode(small_ldpca.encode(np.zeros(1000, dtype=np.uint8)), np.zeros(10))
    with pytest.raises(ValueError, match="unknown decoder 'turbo'"):
        simulate_adaptive(small_ldpca, 0.1, 1, decoder="turbo")


def test_cached_code_equals_fresh_build(tmp_path, monkeypatch):
    monkeypatch.setenv("MDIC_LAB_CACHE", str(tmp_path))
    a = cached_ldpca_code(500, 25, seed=4)
    b = cached_ldpca_code(500, 25, seed=4)  # from the cache file
    c = LDPCACode(500, 25, seed=4)
    assert (a.H0 != b.H0).nnz == 0 and (a.H0 != c.H0).nnz == 0


# ---------------------------------------------------------------- base graphs with rows < n, families
@pytest.fixture(scope="module")
def low_ldpca():
    # rates up to 300/1200 = 0.25 in steps of 300 / (20 * 1200) = 0.0125
    return LDPCACode(1200, levels=20, lam="regular3", rows=300, seed=2)


def test_ldpca_with_fewer_rows_is_nested_and_consistent(low_ldpca):
    code = low_ldpca
    assert code.H0.shape == (300, 1200)
    assert code.rate(code.levels) == pytest.approx((300 + code.crc_bits) / 1200)
    assert code.rate(4) == pytest.approx((4 * 15 + code.crc_bits) / 1200)
    rng = np.random.default_rng(21)
    x = rng.integers(0, 2, code.n).astype(np.uint8)
    feed = code.encode(x)
    prev = set()
    for level in (1, 5, 12, 20):
        pos = code.positions(level)
        assert pos.size == code.bits_at(level) == level * 15 and prev <= set(pos)
        prev = set(pos)
        assert code.merged_matrix(level).nnz == code.H0.nnz  # no edge cancels
        _assert_level_matches_merged_matrix(code, feed, x, level)
    # start level: first rate k * 300 / (20 * 1200) >= h(p)
    p = 0.02
    k = code.start_level_for(dsbs_llr(np.zeros(code.n, dtype=np.uint8), p))
    assert k * 15 / 1200 >= binary_entropy(p) > (k - 1) * 15 / 1200


def test_ldpca_with_fewer_rows_decodes(low_ldpca):
    rng = np.random.default_rng(22)
    for p in (0.01, 0.02):
        x, y = sample_dsbs(p, low_ldpca.n, rng)
        res = low_ldpca.decode(low_ldpca.encode(x), dsbs_llr(y, p))
        assert res.success and np.array_equal(res.x_hat, x)
        assert binary_entropy(p) < res.rate <= low_ldpca.rate(low_ldpca.levels)


def test_family_picks_member_by_prior_p(low_ldpca):
    from toy_sources.codes.ldpc_accumulate import LDPCAFamily

    high = LDPCACode(1200, levels=40, lam="regular3", seed=3)
    fam = LDPCAFamily([(0.2, low_ldpca), (1.0, high)])
    assert fam.index_for(0.02) == 0 and fam.code_for(0.02) is low_ldpca  # h = 0.141
    assert fam.index_for(0.05) == 1 and fam.code_for(0.3) is high  # h = 0.286
    r = simulate_adaptive(fam, 0.02, 2, seed=1)
    assert r["family_member"] == 0 and r["rows"] == 300 and r["ber"] == 0.0
    assert r["rate_step"] == pytest.approx(300 / (20 * 1200))
    with pytest.raises(ValueError, match="sorted by increasing h_max"):
        LDPCAFamily([(1.0, high), (0.2, low_ldpca)])
    with pytest.raises(ValueError, match="same block length"):
        LDPCAFamily([(0.2, LDPCACode(600, 20, "regular3", rows=300)), (1.0, high)])
    with pytest.raises(ValueError, match="crossover p must be in"):
        fam.index_for(1.5)


def test_operating_point_is_one_fixed_rate_decode_per_block(small_ldpca):
    from toy_sources.codes.ldpc_experiments import simulate_operating_point

    r = simulate_operating_point(small_ldpca, 0.03, 3, level=30, seed=4)
    assert r["mode"] == "fixed_operating_point" and r["level"] == 30
    assert r["rate"] == pytest.approx(30 / 50) and r["bits"] == 3000
    assert r["failures"] == 0 and r["ber"] == 0.0
    with pytest.raises(ValueError, match="level must be an int"):
        simulate_operating_point(small_ldpca, 0.03, 1, level=0)


@pytest.mark.parametrize("bad", [0, 21, True, 2.5])
def test_substeps_input_errors(bad):
    with pytest.raises(ValueError, match=r"substeps must be an int in \[1, rows/levels = 20\]"):
        LDPCACode(1000, levels=50, lam="regular3", substeps=bad)


def test_ldpca_rows_input_errors():
    with pytest.raises(ValueError, match="rows=250 .* must be a multiple of levels=20"):
        LDPCACode(1000, levels=20, rows=250)
    with pytest.raises(ValueError, match="rows must be an int in \\[1, n=100\\]"):
        LDPCACode(100, levels=10, rows=200)
    with pytest.raises(ValueError, match="use rows >= 15 \\* levels"):
        LDPCACode(1000, levels=20, rows=200)


# ---------------------------------------------------------------- density evolution
def test_density_evolution_regular_36_threshold():
    """(3,6)-regular ensemble on the BSC: BP threshold 0.084 (Richardson & Urbanke 2001)."""
    from toy_sources.codes.ldpc_density_evolution import bsc_threshold

    p_star = bsc_threshold({3: 1.0}, {6: 1.0}, lo=0.06, hi=0.11, tol=1e-3)
    assert abs(p_star - 0.084) < 0.002


def test_density_evolution_rate_and_stability():
    from toy_sources.codes.ldpc_density_evolution import (
        bsc_bp_converges,
        check_distribution_for_rate,
        design_rate,
        stability_bound_lambda2,
    )

    for lam in ("ldpca_d15", "sw_low_d20", "regular3"):
        for rate in (0.16, 0.37, 0.5):
            rho = check_distribution_for_rate(lam, rate)
            assert design_rate(lam, rho) == pytest.approx(rate, rel=1e-9)
            assert max(rho) - min(rho) <= 1
    # stability: lambda_2 rho'(1) > 1 / (2 sqrt(p(1-p))) makes the zero-error fixed point
    # unstable -> BP cannot converge even well below the capacity limit
    rho = {30: 1.0}
    p = 0.02  # bound on lambda_2: 1 / (29 * 2 * sqrt(0.0196)) = 0.123
    assert stability_bound_lambda2(rho, p) == pytest.approx(1 / (29 * 2 * np.sqrt(p * (1 - p))))
    assert not bsc_bp_converges({2: 0.5, 20: 0.5}, rho, 0.005, max_iter=200)
    assert bsc_bp_converges({3: 0.3, 20: 0.7}, rho, 0.005, max_iter=200)


def test_density_evolution_designed_ensembles_beat_the_old_one_where_designed():
    """DE says sw_low_d20 and sw_low_l2_d20 are much closer to h(p) than ldpca_d15 at syndrome
    rate 0.16, and sw_mid_d15 closer than ldpca_d15 at 0.5."""
    from toy_sources.codes.ldpc_density_evolution import bsc_bp_converges, check_distribution_for_rate

    p = 0.0205  # rate / h(p) = 0.16 / 0.1446 = 1.106
    kw = dict(population=5000, max_iter=300)
    assert bsc_bp_converges("sw_low_d20", check_distribution_for_rate("sw_low_d20", 0.16), p, **kw)
    assert bsc_bp_converges("sw_low_l2_d20", check_distribution_for_rate("sw_low_l2_d20", 0.16), p, **kw)
    assert not bsc_bp_converges("ldpca_d15", check_distribution_for_rate("ldpca_d15", 0.16), p, **kw)
    # at syndrome rate 0.5 the high member's ensemble still converges at p = 0.1 (threshold
    # 0.103 by DE), the middle member's does not (0.098)
    assert bsc_bp_converges("sw_mid_d15", check_distribution_for_rate("sw_mid_d15", 0.5), 0.1, **kw)
    assert not bsc_bp_converges("ldpca_d15", check_distribution_for_rate("ldpca_d15", 0.5), 0.1, **kw)


# ---------------------------------------------------------------- Hamming by hand
def test_hamming_syndrome_coding_is_lossless_at_the_bound():
    r = exhaustive_check()
    assert r["cases"] == 1024 and r["errors"] == 0
    assert r["rate"] == pytest.approx(r["h_x_given_y"]) == pytest.approx(3 / 7)
    # columns of H are the numbers 1..7: all distinct and non-zero
    cols = {tuple(c) for c in HAMMING_H.T.tolist()}
    assert len(cols) == 7 and (0, 0, 0) not in cols
    x = np.array([0, 1, 1, 0, 1, 0, 1])
    assert np.array_equal(hamming_sw_decode(hamming_syndrome(x), x), x)


# ---------------------------------------------------------------- full-length targets
@pytest.fixture(scope="module")
def family():
    from toy_sources.codes.ldpc_experiments import cached_ldpca_family

    return cached_ldpca_family(10_000)  # first build ~1-2 min, then cached


@pytest.mark.slow
def test_full_length_residual_ber_target(family):
    """n = 10^4, 10^6 source bits at p = 0.1: residual BER <= 1e-4."""
    r = simulate_adaptive(family, 0.1, 100, seed=11)
    assert r["bits"] >= 10**6
    assert r["ber"] <= 1e-4


@pytest.mark.slow
def test_full_length_rate_within_15_percent_for_p_005_to_015(family):
    """Met part of the sweep target: rate/H(X|Y) <= 1.15 and BER <= 1e-4 for p in [0.05, 0.15]."""
    for p in (0.05, 0.15):
        r = simulate_adaptive(family, p, 100, seed=12)
        assert r["bits"] >= 10**6 and r["ber"] <= 1e-4
        assert r["ratio"] <= 1.15


@pytest.mark.slow
def test_full_length_low_rate_member_beats_the_single_code_at_p002(family):
    """The family's low-rate member (sw_low_l2_d20, steps 0.002) needs less rate at p = 0.02
    than the full-rate LDPCA code (ldpca_d15, steps 0.01) on the same blocks."""
    fam = simulate_adaptive(family, 0.02, 40, seed=13)
    single = simulate_adaptive(cached_ldpca_code(10_000, 100), 0.02, 40, seed=13)
    assert fam["family_member"] == 0 and fam["ber"] <= 1e-4 and single["ber"] <= 1e-4
    assert fam["ratio"] < single["ratio"] - 0.05


@pytest.mark.slow
def test_full_length_rate_target_at_p01(family):
    """Issue 3: rate/H(X|Y) <= 1.10 at p = 0.1 (high member sw_mid_d15, degree-2 cycles kept long,
    increments of 25 bits; measured 1.0946 +- 0.0046 on these blocks, 1.0927 in the benchmark)."""
    r = simulate_adaptive(family, 0.10, 100, seed=12)
    assert r["ber"] <= 1e-4
    assert r["ratio"] <= 1.10


@pytest.mark.slow
def test_full_length_rate_target_at_p002(family):
    """Issue 3: rate/H(X|Y) <= 1.15 at p = 0.02, on the benchmark's 5e6 source bits (500 blocks;
    a set of 100 has an error bar of +-0.013 at this p). The low member built by PEG on the
    merged checks for every variable measured 1.1414 +- 0.0060 here with the family's 8-bit CRC
    (16 bits: 1.1471; degree-2 only, 16 bits: 1.1556)."""
    r = simulate_adaptive(family, 0.02, 500, seed=1)
    assert r["bits"] >= 5 * 10**6 and r["ber"] <= 1e-4
    assert r["ratio"] <= 1.15
    # the 8-bit CRC is enough: the false convergences it catches are so rare that fewer than
    # 0.1 wrong blocks are expected to slip through in these 500 (FAMILY_CRC_BITS)
    assert r["crc_bits"] == FAMILY_CRC_BITS == 8
    assert r["crc_rejections"] * 2.0 ** -r["crc_bits"] < 0.1


@pytest.mark.slow
@pytest.mark.xfail(
    reason="issue 3 target missed for the rate-adaptive decoder: the ladder starts at the bound and "
    "climbs in increments of 5-25 bits, 12-39 BP attempts and 317-873 BP iterations per block "
    "(benchmark: 0.016-0.074 Mbit per CPU-second); told each block's level in advance, one BP run "
    "from scratch measured 0.33-0.59 Mbit per CPU-second (oracle_* fields) and failed on 12-27 % "
    "of the blocks",
    strict=True,
)
def test_full_length_throughput_target_adaptive(family):
    r = simulate_adaptive(family, 0.10, 100, seed=12)
    assert r["mbit_per_cpu_s"] >= 1.0
