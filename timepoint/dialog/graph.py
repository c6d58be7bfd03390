"""The dialog engine (M11): a LangGraph loop of steering → character → quality gate.

Steering picks who speaks and how (one of eight moves), shifts the mood, can hold a speaker back
and ends the dialog — turn by turn, or in one call for the next `dialog.steering_horizon` turns (a
plan the loop plays out, which shortens the dialog's chain of dependent calls); each character writes
exactly one turn through its own model call, with its own persona parameters; the gate resamples a
degenerate turn (a bare speaker label, a stage direction, its own direction read back, a copied span
of its prompt, a repeat — `quality.degenerate`) once and drops it as a gap if it is degenerate again,
rewrites a hedged or stilted turn once, and at the end scores the dialog with the surface heuristics and
what the gate caught; `semantic_check` adds the judge's reading beside the dialog's aftermath.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Literal, TypedDict

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, Field, create_model

from ..estimate import CHARS_PER_TOKEN
from ..llm.schema_cache import cached_schema
from ..simulation import Simulation
from ..world import Dialog, Timepoint, Turn
from .context import Part, fit, fourth_wall, knowledge_at, withheld
from .persona import persona_params
from .prompts import HISTORY_SHOWN, mood_words, transcript
from .quality import degenerate, opens_with_hedge, surface_quality, voice_distinctiveness
from .structure import Structure, fallback_speaker, plan_structure

log = logging.getLogger(__name__)

TONES = ("calm", "warm", "confident", "hopeful", "neutral", "tense", "anxious", "defensive",
         "frustrated", "angry", "sarcastic")
MOVES = ("direct_statement", "deflection", "strategic_question", "alliance_signal", "silence",
         "partial_disclosure", "status_move", "humor")
MOVE_INSTRUCTIONS = {
    "direct_statement": "Say plainly what you think{to}.",
    "deflection": "Deflect{from_} without answering the point.",
    "strategic_question": "Ask{of} a question that serves your goal.",
    "alliance_signal": "Signal{to} that you are on their side, for your own reasons.",
    "partial_disclosure": "Reveal part of what you know, not all of it.",
    "status_move": "Assert your standing{over}.",
    "humor": "Use dry humour to shift the pressure.",
}
SCORE_BY_GRADE = {"poor": 0.2, "fair": 0.45, "good": 0.7, "excellent": 0.9}
AI_PATTERNS = ("hedging", "consensus_drift", "therapy_speak", "repetition", "exposition_dump", "generic_phrasing",
               "rhetorical_triplets")
MAX_DROPS = 3  # degenerate turns dropped in one dialog before it ends with the turns it has
YOUR_TURN = "(your turn: answer it in your own words)"
DISCIPLINE = ("Voice discipline: plain verbs; no inflated words; no chains of -ing phrases; at most one hedge; "
              "no filler; no lists of three; never narrate or describe actions; no name prefix.")


@cached_schema
def turn_schema(max_chars: int) -> type[BaseModel]:
    """One spoken line; its length cap follows the speaker's persona max_tokens."""
    return create_model(
        "TurnDraft",
        content=(str, Field(min_length=1, max_length=max_chars, description="The spoken line")),
        emotional_tone=(Literal[TONES], ...),
        knowledge_references=(list[Annotated[str, Field(max_length=120)]], Field(default=[], max_length=2)),
    )


TurnDraft = turn_schema(240)


def _room_fields(participants: list[str]) -> dict:
    """What a steering answer decides for the room besides who speaks: why, the mood, who is held back."""
    return dict(move_rationale=(str, Field(max_length=160)),
                mood_shift=(Literal["escalate", "de-escalate", "maintain"], ...),
                suppress_speaker=(list[Literal[tuple(participants)]],
                                  Field(default=[], max_length=max(0, len(participants) - 2))))


@cached_schema
def steering_schema(participants: list[str]) -> type[BaseModel]:
    """Horizon 1: the next turn, or the end of the dialog instead of it."""
    return create_model(
        "SteeringDecision",
        next_speaker=(Literal[tuple(participants)], ...),
        dialog_move=(Literal[MOVES], ...),
        move_target=(Literal[(*participants, "everyone")], ...),
        **_room_fields(participants),
        end_dialog=(bool, ...),
    )


@cached_schema
def plan_schema(participants: list[str], horizon: int) -> type[BaseModel]:
    """Horizon k > 1: the next k turns in one call, so the dialog's chain has one steering call per k turns
    rather than per turn; end_after ends the dialog once they are played."""
    planned = create_model("PlannedTurn", speaker=(Literal[tuple(participants)], ...),
                           dialog_move=(Literal[MOVES], ...),
                           move_target=(Literal[(*participants, "everyone")], ...))
    return create_model(
        "SteeringPlan",
        turns=(list[planned], Field(min_length=horizon, max_length=horizon)),
        **_room_fields(participants),
        end_after=(bool, ...),
    )


class SemanticCheck(BaseModel):
    narrative_advancement: Literal[tuple(SCORE_BY_GRADE)]
    conflict_specificity: Literal[tuple(SCORE_BY_GRADE)]
    voice_distinctiveness: Literal[tuple(SCORE_BY_GRADE)]
    naturalness: Literal[tuple(SCORE_BY_GRADE)]
    ai_patterns: list[Literal[AI_PATTERNS]] = Field(default=[], max_length=4)


class DialogState(TypedDict):
    turns: list[Turn]
    steps: int
    mood: str
    speaker: str | None
    move: str
    target: str | None
    barred: list[str]
    impulses: list[tuple[str, str]]
    produced: bool
    retry: bool
    retried: bool          # this step's one rewrite of a hedged or stilted turn is used
    resampled: bool        # this step's one resample of a degenerate turn is used
    hint: str | None
    ended: bool
    quality: dict
    prompt: list[dict]     # the messages the newest turn was written from, for the gate
    attempts: int          # lines the characters wrote in this dialog, kept or not
    caught: list[str]      # why each degenerate line was caught (`quality.degenerate` reasons)
    dropped: int           # turns dropped as gaps after a degenerate resample
    notice: str | None     # after a drop, until a turn is kept: said in the direction, so the next
                           # request is not the one that was just dropped, answered again
    plan: list[dict]       # steering's planned turns not yet played (speaker, dialog_move, move_target, plan, step)
    plans: int             # steering calls made in this dialog; a planned turn carries its plan's number
    held: list[str]        # who the current plan holds back
    end_after: bool        # the current plan ends the dialog once it is played
    from_plan: list[int]   # the plan and step the current turn comes from


def spoken_line(text: str, names: list[str]) -> str:
    """The speaker's own line: models sometimes prefix a name or run on into the transcript
    ("... Name: ..."); drop the prefix and cut at the run-on."""
    text = text.strip()
    for name in names:
        if text.startswith(f"{name}:"):
            text = text[len(name) + 1:]
    for name in names:
        cut = text.find(f"{name}:", 1)
        if cut > 0:
            text = text[:cut]
    return " ".join(text.split())


def _degenerate_turn(turns: list[Turn], prompt: list[dict], names: list[str]) -> str | None:
    """Why the newest turn is no spoken line at all (`quality.degenerate`), if it is not."""
    return degenerate(turns[-1].content, prompt, [t.content for t in turns[:-1]], names)


def _what_was_wrong(reason: str) -> str:
    """A reason's description without its quoted span: in the direction it would be there to read back."""
    kind, _, detail = reason.partition(": ")
    return re.sub(r'\s*\(".*"\)$', "", detail) or kind


def resample_hint(reason: str) -> str:
    """The direction's addition when a degenerate line is asked for again; it also makes the second
    request differ from the first, so a cache cannot hand the same line back."""
    return (f"Your last attempt was rejected: it {_what_was_wrong(reason)}. "
            "Write one new spoken line, in your own words.")


def drop_notice(dropped: int, reason: str) -> str:
    """The direction's addition after a drop; the count keeps every later request new."""
    return (f"{dropped} line{'s' if dropped > 1 else ''} written here so far had to be dropped; the last "
            f"{_what_was_wrong(reason)}. Speak in your own words.")


def _hedged(turns: list[Turn]) -> str | None:
    last, earlier = turns[-1], turns[:-1]
    if opens_with_hedge(last.content) and any(opens_with_hedge(t.content) for t in earlier):
        return "Do not open with a hedge or a pleasantry. Start with your point."
    return None


class DialogEngine:
    """One dialog at one timepoint among the given participants."""

    def __init__(self, sim: Simulation, tp: Timepoint, participants: list[str]):
        self.sim, self.tp, self.participants = sim, tp, participants
        self.names = {p: sim.entities[p].name for p in participants}
        self.labels = [w for p in participants for w in (sim.entities[p].name, sim.entities[p].title) if w]
        self.structure: Structure = plan_structure([sim.entities[p] for p in participants], sim.config.dialog)
        self.knowledge = knowledge_at(sim, tp, participants)  # fixed for the dialog: told events come after
        graph = StateGraph(DialogState)
        graph.add_node("steering", self.steering)
        graph.add_node("character", self.character)
        graph.add_node("quality_gate", self.quality_gate)
        graph.add_edge(START, "steering")
        graph.add_conditional_edges("steering", lambda s: "quality_gate" if s["ended"] else "character",
                                    ["character", "quality_gate"])
        graph.add_edge("character", "quality_gate")
        graph.add_conditional_edges("quality_gate", self.route, ["steering", "character", END])
        self.graph = graph.compile()

    @property
    def step_limit(self) -> int:
        """Steering steps allowed: every turn, plus a few silences."""
        return self.structure.max_turns + 3

    @property
    def recursion_limit(self) -> int:
        """Per step at most steering and three rounds of character and gate (the line, one rewrite of a
        hedged or stilted line, one resample of a degenerate line); then the final gate."""
        return 7 * self.step_limit + 5

    async def run(self) -> Dialog:
        start: DialogState = {"turns": [], "steps": 0, "mood": "neutral", "speaker": None,
                              "move": "direct_statement", "target": None, "barred": [], "impulses": [],
                              "produced": False, "retry": False, "retried": False, "resampled": False,
                              "hint": None, "ended": False, "quality": {}, "prompt": [], "attempts": 0,
                              "caught": [], "dropped": 0, "notice": None, "plan": [], "plans": 0, "held": [],
                              "end_after": False, "from_plan": []}
        final = await self.graph.ainvoke(start, {"recursion_limit": self.recursion_limit})
        q = final["quality"]
        dialog = Dialog(id=f"dialog_{self.tp.id}", timepoint_id=self.tp.id, participants=self.participants,
                        turns=final["turns"], mood=final["mood"], ending=self.structure.ending,
                        quality_score=q.get("score"), quality_passed=q.get("passed"),
                        quality_checks=q.get("checks", {}),
                        voice_distinctiveness=q.get("voice"))
        for speaker, impulse in final["impulses"]:
            mind = self.sim.entities[speaker].mind
            mind.suppressed = (mind.suppressed + [impulse])[-10:]
        self.sim.fire("M11", "dialog", self.tp.id)
        return dialog

    # -- nodes ----------------------------------------------------------------------------

    async def steering(self, state: DialogState) -> dict:
        """The plan's next turn; with the plan played out, the end it asked for or a new plan from one
        steering call (horizon 1: a decision for one turn, which may end the dialog instead)."""
        turns, s = state["turns"], self.structure
        if len(turns) >= s.max_turns or state["steps"] >= self.step_limit:
            return {"ended": True}
        if state["plan"]:
            return self._play(state)
        if state["end_after"] and len(turns) >= s.min_turns:
            return {"ended": True}
        horizon = self.sim.config.dialog.steering_horizon
        schema = steering_schema(self.participants) if horizon == 1 else plan_schema(self.participants, horizon)
        answer = await self.sim.attempt(
            f"dialog turn {len(turns) + 1} (steering)", self.sim.gateway.structured(
                "steering", self._steering_messages(state), schema, temperature=0.3), self.tp.id)
        if answer is None:
            return {"ended": True, "steps": state["steps"] + 1}  # the dialog ends with the turns it has
        if horizon == 1 and answer.end_dialog and len(turns) >= s.min_turns:
            return {"ended": True, "steps": state["steps"] + 1}
        planned = answer.turns if horizon > 1 else [
            {"speaker": answer.next_speaker, "dialog_move": answer.dialog_move, "move_target": answer.move_target}]
        n = state["plans"] + 1
        plan = [{**dict(t), "plan": n, "step": i} for i, t in enumerate(planned)]
        held = list(answer.suppress_speaker)  # for the whole plan; whoever speaks now is let through
        mood = {"escalate": "escalating", "de-escalate": "de-escalating"}.get(answer.mood_shift, state["mood"])
        update = {"plan": plan, "plans": n, "held": held, "end_after": horizon > 1 and answer.end_after, "mood": mood}
        played = self._play({**state, **update})
        return update | played | {"impulses": state["impulses"] + [
            (p, f"held back by the room at {self.tp.id}") for p in held if p != played["speaker"]]}

    def _play(self, state: DialogState) -> dict:
        """The plan's next turn as this step; a speaker held back or just heard gives way to another. After
        a silence the rest of the plan is dropped: steering plans again for a room that has changed."""
        turns, s = state["turns"], self.structure
        step, rest = state["plan"][0], state["plan"][1:]
        barred = set(state["barred"])
        speaker = step["speaker"]
        if speaker in barred or (turns and speaker == turns[-1].speaker):
            speaker = fallback_speaker(self.sim.rng, self.participants, turns, barred)
        move = step["dialog_move"]
        steps_left = self.step_limit - state["steps"] - 1
        if move == "silence" and (state["move"] == "silence" or steps_left <= s.min_turns - len(turns)):
            move = "direct_statement"  # no silence twice running, nor when turns are needed to reach the minimum
        target = step["move_target"] if step["move_target"] in self.participants else None
        silent = move == "silence"
        return {"speaker": speaker, "move": move, "target": None if target == speaker else target,
                "barred": [p for p in state["held"] if p != speaker] + ([speaker] if silent else []),
                "plan": [] if silent else rest, "end_after": state["end_after"] and not silent,
                "from_plan": [step["plan"], step["step"]],
                "steps": state["steps"] + 1, "hint": None, "retried": False, "resampled": False, "produced": False}

    async def character(self, state: DialogState) -> dict:
        speaker = self.sim.entities[state["speaker"]]
        if state["move"] == "silence":
            return {"impulses": state["impulses"] + [(speaker.id, f"chose silence at {self.tp.id}")],
                    "produced": False}
        turns = state["turns"]
        wall = fourth_wall(self.sim, speaker, self.tp, self.participants, self.knowledge)
        params = persona_params(speaker.cognitive.arousal, speaker.cognitive.energy, speaker.tensor.behavior,
                                len(turns), self.structure.max_turns, wall.phi)
        messages = self._character_messages(state, wall)
        draft = await self.sim.attempt(f"dialog turn {len(turns) + 1} ({speaker.id})", self.sim.gateway.structured(
            "dialog", messages, turn_schema(2 * params.max_tokens), temperature=params.temperature,
            top_p=params.top_p, max_tokens=params.max_tokens + 64, frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty), self.tp.id)
        if draft is None:
            return {"ended": True, "produced": False}  # the dialog ends with the turns it has
        line = spoken_line(draft.content, list(self.names.values())) or "..."
        turn = Turn(index=len(turns), speaker=speaker.id, content=line, emotional_tone=draft.emotional_tone,
                    knowledge_references=draft.knowledge_references, dialog_move=state["move"],
                    move_target=state["target"], params=params.as_dict() | self._plan_record(state))
        return {"turns": turns + [turn], "produced": True, "retry": False, "prompt": messages}

    def _plan_record(self, state: DialogState) -> dict:
        """Which steering plan and step wrote the turn; at horizon 1 every turn is its own plan, so none."""
        if self.sim.config.dialog.steering_horizon == 1:
            return {}
        plan, step = state["from_plan"]
        return {"steering_plan": plan, "plan_step": step}

    async def quality_gate(self, state: DialogState) -> dict:
        """A degenerate line is asked for again with a hint saying what was wrong; degenerate again, it
        is dropped and recorded as a gap, and steering goes on (the dialog ends after MAX_DROPS drops).
        Either way the rest of steering's plan is dropped: it was made for a conversation that went
        otherwise; after a drop the next turn goes to someone else, since a speaker asked again straight
        away tends to fail the same way. A hedged or stilted line is rewritten once, then let through."""
        turns = state["turns"]
        if state["ended"]:
            return {"quality": self._final_quality(turns, state["attempts"], state["caught"],
                                                         state["dropped"])}
        if not state["produced"]:
            return {"retry": False}
        attempts = state["attempts"] + 1
        reason = _degenerate_turn(turns, state["prompt"], self.labels)
        if reason:
            last, kept, caught = turns[-1], turns[:-1], state["caught"] + [reason]
            log.info("Degenerate dialog turn %d (%s): %s", len(turns), last.speaker, reason)
            replan = {"plan": [], "end_after": False}
            if not state["resampled"]:
                return {"turns": kept, "retry": True, "resampled": True, "hint": resample_hint(reason),
                        "produced": False, "attempts": attempts, "caught": caught} | replan
            self.sim.gap(f"dialog turn {len(turns)} ({last.speaker})", f"degenerate: {reason}", self.tp.id)
            dropped = state["dropped"] + 1
            update = {"turns": kept, "retry": False, "produced": False, "attempts": attempts, "caught": caught,
                      "dropped": dropped, "notice": drop_notice(dropped, reason),
                      "barred": state["barred"] + [last.speaker]} | replan  # another voice next
            if dropped >= MAX_DROPS:
                update |= {"ended": True, "quality": self._final_quality(kept, attempts, caught, dropped)}
            return update
        problem = _hedged(turns)
        every = self.sim.config.dialog.quality_every
        if not problem and every and len(turns) % every == 0:
            window = surface_quality(turns[-every:])
            if not window.passed:
                problem = f"The conversation is getting stilted ({', '.join(window.failed)}). Break the pattern."
        if problem and not state["retried"]:
            return {"turns": turns[:-1], "retry": True, "retried": True, "hint": problem, "produced": False,
                    "attempts": attempts}
        return {"retry": False, "attempts": attempts, "notice": None}

    def route(self, state: DialogState) -> str:
        if state["ended"]:
            return END
        return "character" if state["retry"] else "steering"

    # -- prompts and scores -------------------------------------------------------------

    def _steering_messages(self, state: DialogState) -> list[dict]:
        sim, turns, s = self.sim, state["turns"], self.structure
        people = []
        for p in self.participants:
            e = sim.entities[p]
            urgent = sum(u.urgency > 0.4 for u in e.mind.unspoken)
            failed = next((a for a in reversed(e.mind.attempts) if a.outcome in ("dismissed", "ignored")), None)
            people.append(
                f"- {p} ({e.name}, {e.title}): goals {'; '.join(e.goals) or 'unstated'}; seems "
                f"{mood_words(e.cognitive)}; holds {len(withheld(p, self.knowledge))} things "
                f"the others do not know; {urgent} urgent unspoken"
                + (f"; last failed tactic {failed.tactic}" if failed else "")
                + ("; may stay silent" if p in s.silent else ""))
        recent = "\n".join(f"{t.speaker} [{t.dialog_move}]: {t.content}" for t in turns[-6:]) or "(no one yet)"
        tactics = ", ".join(t.dialog_move for t in turns[-5:]) or "none"
        quiet = [self.names[p] for p in state["barred"]]
        last = turns[-1].speaker if turns else None
        horizon = sim.config.dialog.steering_horizon
        choose, twice, end = ("Choose who would really speak next and how", "", "end the dialog") if horizon == 1 \
            else (f"Plan who would really speak in each of the next {horizon} turns and how",
                  " or anyone twice running", "end the dialog after these turns (end_after)")
        rules = (f"{choose}. Avoid round-robin order; never pick the last speaker{twice}; switch tactics after a "
                 f"dismissal; {end} when the goals are met or it has run its course, and lean toward ending after "
                 f"{s.min_turns} turns. Moves: {', '.join(MOVES)}. Answer in JSON.")
        # Stable first: the scene, the people and the lines so far open every call of this dialog the same
        # way (a model that keeps prompt states reads them once); what changes each step comes last.
        user = (f"Scene: {self.tp.event}\nPeople:\n" + "\n".join(people) +
                f"\n\nThis conversation tends toward: {s.ending.replace('_', ' ')}; aim for "
                f"{s.min_turns}-{s.max_turns} turns.\nLast lines:\n{recent}\n\n"
                f"Mood: {state['mood']}. Turns so far: {len(turns)}. Recent moves: {tactics}. "
                f"Step {state['steps'] + 1}." + (f" Holding back now: {', '.join(quiet)}." if quiet else "") +
                (f" Last speaker: {last} (not again)." if last else ""))
        return [{"role": "system", "content": "You direct a multi-party conversation. " + rules},
                {"role": "user", "content": user}]

    def _character_messages(self, state: DialogState, wall) -> list[dict]:
        """Direction goes in the system message; the user message is only the conversation and the ask,
        which keeps models from reading the direction back as dialog.

        Under the dialog model's prompt budget (a small model) the context is cut to fit, by priority; the
        conversation moves into the context and the ask is a bare cue (a small model repeats the last
        thing it is handed, a question or a line); and the character's voice is shown, not described: one
        of its speech examples stands as its own earlier answer, which is what lets a 135M model write a
        line in character rather than copy its prompt."""
        speaker, turns = self.sim.entities[state["speaker"]], state["turns"]
        budget = self.sim.gateway.card("dialog").prompt_budget
        chars = None if budget is None else CHARS_PER_TOKEN * budget
        target = self.names.get(state["target"] or "", "")
        instruction = MOVE_INSTRUCTIONS.get(state["move"], "Say what you think.").format(
            to=f" to {target}" if target else "", from_=f" {target}" if target else "",
            of=f" {target}" if target else "", over=f" over {target}" if target else "")
        direction = (f"Direction for your next line (do not repeat it): the mood is {state['mood']}; this is "
                     f"turn {len(turns) + 1} of about {self.structure.max_turns}. {instruction}"
                     + "".join(f" {extra}" for extra in (state.get("notice"), state["hint"]) if extra))
        if not turns:
            ask = [Part(f"(now) {self.tp.event}" if chars else f"You speak first. What do you, {speaker.name}, say?")]
        else:
            earlier = turns[:-1][-HISTORY_SHOWN:]
            last = turns[-1]
            said = f'{self.names[last.speaker]} says: "{last.content}"'
            ask = [Part("Conversation so far:" if earlier else "", cut=5 + len(earlier)),
                   *(Part(f"{self.names[t.speaker]}: {t.content}", cut=5 + len(earlier) - age, glue="\n")
                     for age, t in enumerate(earlier)),
                   Part(said if chars else f"{said}\nWhat do you, {speaker.name}, say next?")]
        heard = []
        if chars and turns:  # a small model copies what it is handed last: the conversation goes in the context
            heard, ask = [Part(fit(ask, chars // 2))], [Part(YOUR_TURN)]
        user = fit(ask, chars)
        primer = self._primer(speaker, len(turns)) if chars else []
        system = fit([*wall.front_parts, Part(wall.back, cut=7), Part(DISCIPLINE, cut=6), *heard,
                      Part(f"{direction}\nAnswer in JSON with content, emotional_tone and knowledge_references.")],
                     None if chars is None else chars - len(user) - sum(len(m["content"]) for m in primer))
        return [{"role": "system", "content": system}, *primer, {"role": "user", "content": user}]

    def _primer(self, speaker, turn: int) -> list[dict]:
        """An earlier exchange in which the character answered with one of its speech examples (a
        different one each turn), in the answer's own JSON shape; none without examples."""
        if not speaker.speech_examples:
            return []
        other = next((self.names[p] for p in self.participants if p != speaker.id), "Someone")
        example = speaker.speech_examples[turn % len(speaker.speech_examples)]
        return [{"role": "user", "content": f'(earlier) {other} says: "What do you make of this?"'},
                {"role": "assistant", "content": json.dumps({"content": example, "emotional_tone": "neutral",
                                                             "knowledge_references": []})}]

    def _final_quality(self, turns: list[Turn], attempts: int = 0, caught: list[str] = (),
                       dropped: int = 0) -> dict:
        """The surface score scaled by the share of clean attempts (lines written that were not
        degenerate: 1 − caught / attempts), passed at 0.6 like the surface checks; the checks add
        `degenerate_caught` (lines caught, resampled or dropped), `degenerate_dropped` (turns dropped as
        gaps) and `degenerate_reasons` (caught lines by kind). The judge's check comes later
        (`semantic_check`)."""
        if not turns:
            return {}
        surface = surface_quality(turns)
        clean = 1 - len(caught) / attempts if attempts else 1.0
        score = round(surface.score * clean, 4)
        kinds: dict[str, int] = {}
        for reason in caught:
            kind = reason.partition(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        result = {"score": score, "passed": score >= 0.6,
                  "checks": {**surface.checks, "degenerate_caught": len(caught), "degenerate_dropped": dropped,
                             "degenerate_reasons": kinds},
                  "voice": voice_distinctiveness(turns)}
        log.info("Dialog quality check: score=%.2f", result["score"])
        log.info("Voice distinctiveness score: %.2f", result["voice"])
        return result


async def semantic_check(sim: Simulation, tp: Timepoint, dialog: Dialog) -> None:
    """The judge's reading of a dialog that passed the surface checks: four ratings and the machine-like
    patterns it shows; a dialog the judge fails is marked failed. It runs beside the dialog's aftermath,
    which does not wait on it, so it is not one more call on the run's chain of dependent calls."""
    if not dialog.quality_passed or not sim.config.dialog.semantic_check:
        return
    check = await sim.attempt("dialog semantic check", sim.gateway.structured("judge", [
        {"role": "system", "content": "You judge a dialog written for a fine-tuning dataset. Rate each "
                                      "dimension and flag machine-like patterns. Answer in JSON."},
        {"role": "user", "content": f"Scene: {tp.event}\n\n{transcript(sim, dialog.turns, 40)}"},
    ], SemanticCheck, temperature=0.1), tp.id)
    if check is None:
        return
    scores = {k: SCORE_BY_GRADE[getattr(check, k)] for k in
              ("narrative_advancement", "conflict_specificity", "voice_distinctiveness", "naturalness")}
    passed = all(v >= 0.4 for v in scores.values()) and len(check.ai_patterns) < 2
    dialog.semantic = {**scores, "ai_patterns": check.ai_patterns, "passed": passed}
    dialog.quality_passed = passed


async def run_dialog(sim: Simulation, tp: Timepoint, participants: list[str]) -> Dialog:
    return await DialogEngine(sim, tp, participants).run()
