"""Rhetorical profiles of ten archetypes, matched from a character's title or role (reference §5.3).

They shape how a character argues (back layer); they are never quoted in the dialog.
"""

from __future__ import annotations

import re

PROFILES: dict[str, dict[str, str]] = {
    "engineer": {
        "argument_style": "numbers, tolerances and failure modes",
        "disagreement_pattern": "names the exact spec that is violated",
        "deflection_style": "retreats into technical detail",
        "sentence_style": "short declaratives with units",
        "never_does": "argue from feelings or status",
        "signature_moves": "asks what the data says; offers a test",
        "voice_anti_exemplar": "We should all come together and find a holistic solution.",
    },
    "executive_director": {
        "argument_style": "strategy, timelines and money",
        "disagreement_pattern": "reframes the objection as a business risk",
        "deflection_style": "moves the item to a later meeting",
        "sentence_style": "confident, forward-looking, decisive",
        "never_does": "admit uncertainty in front of subordinates",
        "signature_moves": "sets deadlines; assigns owners",
        "voice_anti_exemplar": "I'm not sure, what does everyone feel we should do?",
    },
    "military_commander": {
        "argument_style": "mission, chain of command, readiness",
        "disagreement_pattern": "pulls rank, then asks for a recommendation",
        "deflection_style": "cites orders or protocol",
        "sentence_style": "clipped imperatives",
        "never_does": "ramble or hedge",
        "signature_moves": "gives orders with a time limit",
        "voice_anti_exemplar": "Perhaps we might consider, if it's not too much trouble...",
    },
    "scientist": {
        "argument_style": "evidence, uncertainty and method",
        "disagreement_pattern": "questions the sample, the controls or the statistics",
        "deflection_style": "asks for more data",
        "sentence_style": "qualified but precise",
        "never_does": "claim certainty the data does not support",
        "signature_moves": "quotes an effect size or a p-value",
        "voice_anti_exemplar": "It's definitely true, everyone knows it.",
    },
    "politician": {
        "argument_style": "coalitions, constituents and timing",
        "disagreement_pattern": "agrees in principle, trades on the details",
        "deflection_style": "pivots to a shared value",
        "sentence_style": "warm, rounded, quotable",
        "never_does": "close a door publicly",
        "signature_moves": "proposes a trade",
        "voice_anti_exemplar": "No. Absolutely not. End of discussion.",
    },
    "lawyer": {
        "argument_style": "precedent, liability and exact wording",
        "disagreement_pattern": "narrows the claim until it breaks",
        "deflection_style": "cites privilege or process",
        "sentence_style": "careful, conditional, exact",
        "never_does": "concede a fact without qualification",
        "signature_moves": "asks a leading question",
        "voice_anti_exemplar": "Whatever, it's probably fine legally.",
    },
    "diplomat": {
        "argument_style": "mutual interest and face-saving",
        "disagreement_pattern": "restates the other side before differing",
        "deflection_style": "proposes a working group",
        "sentence_style": "measured and courteous",
        "never_does": "insult or corner anyone",
        "signature_moves": "offers a compromise with a condition",
        "voice_anti_exemplar": "You're wrong and you know it.",
    },
    "safety_officer": {
        "argument_style": "hazards, margins and procedures",
        "disagreement_pattern": "refuses to sign off and says why",
        "deflection_style": "points to the checklist",
        "sentence_style": "plain, firm, specific",
        "never_does": "trade safety for schedule",
        "signature_moves": "names the worst case",
        "voice_anti_exemplar": "Let's just push it and hope for the best.",
    },
    "doctor": {
        "argument_style": "symptoms, risk and triage",
        "disagreement_pattern": "cites what the patient needs now",
        "deflection_style": "defers to protocol",
        "sentence_style": "calm, direct, clinical",
        "never_does": "speculate without examining",
        "signature_moves": "orders a test or a dose",
        "voice_anti_exemplar": "I guess it could be anything really.",
    },
    "journalist": {
        "argument_style": "sources, records and the public interest",
        "disagreement_pattern": "asks who benefits",
        "deflection_style": "protects the source",
        "sentence_style": "pointed questions",
        "never_does": "accept an answer without a follow-up",
        "signature_moves": "quotes someone back to themselves",
        "voice_anti_exemplar": "That sounds fine, I won't ask more.",
    },
}

_KEYWORDS = [
    ("safety_officer", ("safety", "compliance", "auditor", "inspector", "regulator")),
    ("doctor", ("doctor", "physician", "nurse", "surgeon", "medic", "resident")),
    ("lawyer", ("lawyer", "attorney", "counsel", "judge", "prosecutor", "paralegal")),
    ("journalist", ("journalist", "reporter", "editor", "correspondent")),
    ("diplomat", ("diplomat", "ambassador", "negotiator", "mediator", "envoy")),
    ("politician", ("senator", "congress", "secretary of", "minister", "mayor", "politician",
                    "representative", "governor", "president of the united")),
    ("military_commander", ("commander", "captain", "general", "colonel", "admiral", "sergeant")),
    ("engineer", ("engineer", "cto", "technician", "developer", "architect")),
    ("scientist", ("scientist", "researcher", "postdoc", "professor", "analyst", "biologist", "physicist")),
    ("executive_director", ("ceo", "cfo", "coo", "director", "founder", "chair", "president", "investor",
                            "partner", "manager", "executive", "head of")),
]


def archetype_of(title: str, description: str = "") -> str | None:
    """The first archetype whose keyword appears as a word (so "director" is not "cto")."""
    text = f"{title} {description}".lower()
    return next((name for name, words in _KEYWORDS
                 if any(re.search(rf"\b{re.escape(w)}", text) for w in words)), None)
