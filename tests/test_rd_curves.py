"""Operational R-D curves (:mod:`mdic_lab.metrics.rd`): the side-information gain in closed form."""

from mdic_lab.metrics.rd import side_information_gain


def test_side_information_gain_closed_form():
    rates = [0.05, 0.1, 0.2, 0.4]
    psnr = [18.0, 20.0, 22.5, 24.0]
    anchor = [{"bpp_coded": r, "psnr": q, "lmbda": i} for i, (r, q) in enumerate(zip(rates, psnr))]
    # the same qualities at half the rate: BD-rate = -50 %
    test = [{"bpp_coded": r / 2, "psnr": q, "lmbda": i} for i, (r, q) in enumerate(zip(rates, psnr))]
    # plus a dominated point (more bits, less quality) that the Pareto front drops
    test.append({"bpp_coded": 0.03, "psnr": 17.0, "lmbda": 9})
    g = side_information_gain(anchor, test)
    assert abs(g["bd_rate"] - (-50.0)) < 1e-6
    assert g["dropped"] == [("test", 9)] and g["points"] == [4, 4]
    assert g["gain_low"] > 0 and g["gain_high"] > 0
