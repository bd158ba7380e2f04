"""Parsing and gates on hand-written good and bad patent texts, in both orders."""

import pytest

from generation.checking import Rejection, check_patent, cited_claims, repetition_ratio
from tests.factories import ABSTRACT, CLAIMS, TITLE, bottom_up, top_down


@pytest.mark.parametrize("render", [top_down, bottom_up])
def test_a_good_patent_is_accepted_in_both_orders(render) -> None:
    verdict = check_patent(render())

    assert verdict.accepted, verdict.reasons
    assert verdict.parsed is not None
    assert verdict.parsed.title == TITLE
    assert verdict.parsed.abstract == ABSTRACT
    assert [claim["number"] for claim in verdict.parsed.claims] == [1, 2, 3, 4]
    assert (
        verdict.parsed.claims[1]["text"]
        == "The hose reel of claim 1, wherein the legs fold against each other about the hinge."
    )
    assert 0.5 < verdict.score <= 1


def test_both_orders_parse_to_the_same_document() -> None:
    assert check_patent(top_down()).parsed == check_patent(bottom_up()).parsed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("# Patent\n\n## Title\nHose reel\n\n## Claims\n" + "\n".join(CLAIMS), Rejection.MISSING_SECTION),
        (top_down(abstract=""), Rejection.EMPTY_SECTION),
        (top_down(claims=["A hose reel without a number."]), Rejection.EMPTY_SECTION),
        (top_down() + "\n## Abstract\nAgain.\n", Rejection.DUPLICATE_SECTION),
        (top_down(title=" ".join(["word"] * 31)), Rejection.OVERLONG_FIELD),
        (top_down(abstract="A reel. " * 200), Rejection.OVERLONG_FIELD),
        (
            top_down(claims=[CLAIMS[0], CLAIMS[2].replace("3.", "2.", 1), CLAIMS[1].replace("2.", "4.", 1)]),
            Rejection.CLAIM_NUMBERING,
        ),
        (top_down(claims=[CLAIMS[1].replace("2.", "1.", 1), CLAIMS[1]]), Rejection.CLAIM_1_DEPENDENT),
        (
            top_down(claims=[*CLAIMS[:3], "4. The hose reel of claim 4, wherein the drum is red."]),
            Rejection.BAD_DEPENDENCY,
        ),
        (
            top_down(claims=[*CLAIMS[:3], "4. The hose reel of claim 7, wherein the drum is red."]),
            Rejection.BAD_DEPENDENCY,
        ),
        (
            top_down(claims=[CLAIMS[0], "2. The hose reel of claim 3, wherein the drum is red.", CLAIMS[2]]),
            Rejection.BAD_DEPENDENCY,
        ),
        (
            top_down(
                claims=[
                    *CLAIMS[:3],
                    "4. The hose reel of claim 1, wherein the drum " + "and the drum " * 40 + "is red.",
                ]
            ),
            Rejection.REPETITION,
        ),
        (
            top_down(
                abstract="Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor.",
                claims=["1. Xqz vprt klm wwd zzkt bnnq rrts pplk, qqwe rtyu."],
            ),
            Rejection.NOT_ENGLISH,
        ),
        (
            top_down(claims=[*CLAIMS[:3], "4. The hose reel of claim 3, wherein the release lever is"]),
            Rejection.TRUNCATED,
        ),
    ],
)
def test_a_bad_patent_is_rejected_with_its_reason(text: str, reason: Rejection) -> None:
    verdict = check_patent(text)
    assert not verdict.accepted
    assert reason in verdict.reasons


def test_text_cut_at_the_token_limit_is_truncated_even_if_it_looks_complete() -> None:
    assert check_patent(bottom_up(), finished=False).reasons == [Rejection.TRUNCATED]


def test_cited_claims_reads_ranges_and_alternatives() -> None:
    assert cited_claims("The reel of any of claims 2 to 4 or claim 7") == {2, 3, 4, 7}


def test_repetition_ratio_separates_loops_from_prose() -> None:
    assert repetition_ratio(CLAIMS[0]) == 0
    assert repetition_ratio("the drum and the drum and the drum and the drum and the drum") > 0.5


# --- Sense: patent-shaped text that says nothing -------------------------------------------------

SALAD_ABSTRACT = (
    "A reel drum the frame lock hose at of a ratchet the angle and folds holds any storage flat axle on for "
    "lever release a frees wound it so the can be hose drum has the mounted on a that."
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            top_down(
                abstract="An elongatelongat samplumination drumsel has a frabbet ratchetry on its axlow wintle.",
                claims=["1. A drumsel comprising: an elongatelongat frabbet; a samplumination axlow; and a wintle "
                        "ratchetry that plorbs the drumsel."],
            ),
            Rejection.NON_WORDS,
        ),
        (
            top_down(claims=["1. A hose hose reel reel comprising: a frame frame having two legs legs joined by by "
                             "a hinge hinge; and a drum drum mounted on an axle axle carried by the frame."]),
            Rejection.DOUBLED_WORDS,
        ),
        (top_down(abstract=SALAD_ABSTRACT, claims=["1. " + SALAD_ABSTRACT]), Rejection.DISFLUENT),
        (top_down(claims=["1. A surgical device, comprising: a ."]), Rejection.CLAIM_1_FORM),
        (top_down(claims=["1. A hose reel.", *CLAIMS[1:]]), Rejection.CLAIM_1_FORM),
        (
            top_down(claims=[CLAIMS[0], "2. The hose reel of claim 1, wherein the sprocket turns the flange, the "
                             "cam lifts the spindle and the pawl engages the gearwheel."]),
            Rejection.ANTECEDENT_BASIS,
        ),
        (
            top_down(title="Cold brewed coffee", abstract="A beverage is brewed by steeping roasted coffee grounds "
                     "in cold water overnight, then filtering the grounds out through paper."),
            Rejection.INCOHERENT,
        ),
        (
            top_down(claims=[CLAIMS[0], "2. The hose reel of claim 1, wherein the legs fold flat and fold flat and "
                             "fold flat and fold flat against each other."]),
            Rejection.REPETITION,
        ),
        (
            top_down(claims=["1. A hose reel comprising: a frame having a axle; an drum mounted on the axle of the "
                             "axle; and a ratchet lock that holds an hose against the hose reel.",
                             "2. The hose reel of claim 1, wherein a user is detected by the user."]),
            Rejection.UNGRAMMATICAL,
        ),
    ],
)  # fmt: skip
def test_nonsense_under_the_right_headings_is_rejected_for_what_is_wrong(text: str, reason: Rejection) -> None:
    assert reason in check_patent(text).reasons


def test_the_model_cards_other_heading_style_and_extra_sections_parse() -> None:
    text = top_down().replace("## Title", "# Title").replace("## Claims", "## Background\nReels tangle.\n\n## Claims")

    verdict = check_patent(text)

    assert verdict.accepted, verdict.reasons
    assert verdict.parsed == check_patent(top_down()).parsed


def test_a_cancelled_range_counts_in_the_numbering() -> None:
    claims = ["1-2. (canceled)", "3. " + CLAIMS[0][3:], "4. The hose reel of claim 3, wherein the drum is red."]

    verdict = check_patent(top_down(claims=claims))

    assert verdict.accepted, verdict.reasons
    assert verdict.parsed is not None
    assert [(c["number"], c.get("through")) for c in verdict.parsed.claims] == [(1, 2), (3, None), (4, None)]


def test_a_top_down_patent_cut_in_its_claims_keeps_exactly_the_complete_ones() -> None:
    cut = top_down(claims=[*CLAIMS[:3], "4. The hose reel of claim 3, wherein the release"])

    verdict = check_patent(cut, finished=False)

    assert verdict.accepted, verdict.reasons
    assert verdict.trimmed
    assert verdict.parsed is not None
    assert [claim["number"] for claim in verdict.parsed.claims] == [1, 2, 3]


def test_a_cut_with_only_claim_1_or_in_another_order_is_still_truncated() -> None:
    only_one = top_down(claims=["1. A hose reel comprising: a frame having two legs joined by"])
    assert Rejection.TRUNCATED in check_patent(only_one, finished=False).reasons
    assert check_patent(bottom_up(), finished=False).reasons == [Rejection.TRUNCATED]


def test_articles_that_follow_sound_not_spelling_are_not_grammar_errors() -> None:
    from generation.language import grammar_errors

    text = "A unit holds an LED, an RF antenna and an X-ray source an hour apart; part a and part b; a one-way valve."

    assert grammar_errors(text) == 0
    assert grammar_errors("a electrode, an treatment and the user by the user") == 3
    assert grammar_errors("the second and second arms") == 1


def test_claim_1_that_speaks_of_a_claim_is_dependent() -> None:
    text = top_down(claims=["1. A method of claim six, comprising: turning a drum on an axle of a frame.", *CLAIMS[1:]])

    assert Rejection.CLAIM_1_DEPENDENT in check_patent(text).reasons


def test_a_thing_related_to_itself_is_a_slip_only_where_its_noun_phrase_ends() -> None:
    from generation.language import grammar_errors

    real = "supplying the fuel from the fuel container to a surface of the surface acoustic wave element"
    assert grammar_errors(real) == 0
    assert grammar_errors("it is detected by the user by the user. A portion of the portion is cut") == 2
    assert grammar_errors("using a first of the first configured to cut") == 1


def test_a_doubled_word_needs_a_space_between_not_a_hyphen_or_a_claim_number() -> None:
    from generation.language import doubled_words

    assert doubled_words("a female-female terminal; 1. (canceled) 2. (canceled) 3. A box") == 0
    assert doubled_words("A surgical surgical device with a tissue tissue clamp") == 2


def test_an_ellipsis_is_no_loop() -> None:
    from generation.language import has_loop

    assert not has_loop("columns 0, 1, . . . n1-1; and the cards ace of hearts . . . nine of hearts")
    assert has_loop("the valve the valve the valve opens")


def test_a_real_claim_set_of_130_claims_is_numbered_correctly() -> None:
    claims = [CLAIMS[0], *(f"{n}. The hose reel of claim 1, wherein the frame is steel." for n in range(2, 131))]

    assert Rejection.CLAIM_NUMBERING not in check_patent(top_down(claims=claims)).reasons
