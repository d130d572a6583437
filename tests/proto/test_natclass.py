from covim_p2p.proto.natclass import ADVICE, BLOCKED, FIREWALL, PORT_RESTRICTED, RESTRICTED, SYMMETRIC, failed, report


def test_report_says_what_the_nat_means_and_where_we_are():
    r = report(SYMMETRIC, "203.0.113.9", 4000)
    assert (r.kind, r.external) == (SYMMETRIC, "203.0.113.9:4000")
    assert r.text == f"NAT check: {ADVICE[SYMMETRIC]} (public address 203.0.113.9:4000)"


def test_pystun3_gives_no_address_for_some_types():
    r = report(PORT_RESTRICTED, None, None)
    assert r.external == "" and r.text == f"NAT check: {ADVICE[PORT_RESTRICTED]}"


def test_unknown_answers_and_failures_are_sentences():
    assert "unusual answer" in report("Meet an error, when do Test1 on Changed IP and Port", None, None).text
    assert report(BLOCKED, None, None).text.startswith("NAT check: no answer from the STUN server")
    assert failed("KeyError: '0000'") .text == "NAT check failed: KeyError: '0000'"
    assert failed("x").kind == ""


def test_the_advice_matches_the_nat_lab_matrix():
    """tests/natlab/test_matrix.py: a firewalled peer links directly with every cone peer (the old text
    said "only with open peers"); a symmetric NAT links with open, full-cone and restricted-cone peers."""
    assert "except with peers behind a symmetric NAT" in ADVICE[FIREWALL] and "only with open" not in ADVICE[FIREWALL]
    assert "open, full-cone and restricted-cone" in ADVICE[SYMMETRIC]
    assert "port-restricted, firewalled or symmetric" in ADVICE[SYMMETRIC]
    assert "with everyone" in ADVICE[RESTRICTED]
