"""The check every notebook test ends with: a non-empty claims table in which every claim holds."""


def assert_all_claims_hold(metrics: dict) -> None:
    """Fail with the claims that do not hold, and their measured values."""
    claims = metrics["claims"]
    assert claims, "notebook produced an empty claims table"
    failed = [c["claim"] + f" (measured {c['measured']})" for c in claims if not c["holds"]]
    assert not failed, f"claims that do not hold: {failed}"
    assert metrics["all_claims_hold"] is True
