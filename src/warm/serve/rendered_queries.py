"""Reading back the (prompt, response) an RLHF trainer sends as one text rendered by its policy's chat template.

OpenRLHF (0.11) posts one `query` per sample: the policy's token ids decoded with their special tokens, i.e. the
prompt through the POLICY's chat template, then the generated answer and its end-of-turn token
(`<|im_start|>user\\nWhat is 2+2?<|im_end|>\\n<|im_start|>assistant\\n4<|im_end|>`). The reward model was trained on the
plain turns (user: "What is 2+2?", assistant: "4") through its OWN contract, so the server takes the turns back out
of the policy's rendering: given the policy's tokenizer (`warm serve --policy-tokenizer`), the template is rendered
once with marker strings in place of the turns, as the trainer renders a prompt (with the generation prompt) and
as a finished turn, which shows the text around a single user turn and after its answer; a query with that shape is
cut there, and the end-of-turn text (or trailing special tokens) is taken off the answer. Queries of another shape
(a custom system turn, several turns) are left to the caller's fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

from warm.errors import WarmError

_USER, _ANSWER = "WARMUSERTURN0x5f3a", "WARMANSWERTURN0x9c1e"  # marker strings no template rewrites


@dataclass(frozen=True)
class PolicyChatFormat:
    """The text a policy's chat template puts around one user turn and its answer."""

    before_user: str  # everything up to the user's words (a default system turn included)
    generation_prompt: str  # from the end of the user's words to the start of the answer
    after_answer: str  # what the template writes after an answer (its end-of-turn)
    special_tokens: tuple[str, ...]  # the policy's special tokens, longest first

    @classmethod
    def from_tokenizer(cls, tokenizer) -> PolicyChatFormat:
        if not getattr(tokenizer, "chat_template", None):
            raise WarmError(f"{getattr(tokenizer, 'name_or_path', 'policy tokenizer')}: has no chat template to read "
                            "queries back with")
        user = {"role": "user", "content": _USER}
        prompt = tokenizer.apply_chat_template([user], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([user, {"role": "assistant", "content": _ANSWER}], tokenize=False)
        if prompt.count(_USER) != 1 or full.count(_ANSWER) != 1:
            raise WarmError("the policy's chat template does not show each turn once; cannot read queries back")
        before_user, generation_prompt = prompt.split(_USER)
        specials = sorted({t for t in tokenizer.all_special_tokens if t}, key=len, reverse=True)
        return cls(before_user, generation_prompt, full.split(_ANSWER)[1], tuple(specials))

    def split(self, query: str) -> tuple[str, str] | None:
        """(user's words, answer) of a query in this format, or None when it has another shape."""
        if not query.startswith(self.before_user):
            return None
        user, sep, answer = query[len(self.before_user):].partition(self.generation_prompt)
        if not sep or not self.generation_prompt or (self.before_user and self.before_user in answer):
            return None  # no generation prompt to cut at, or a second turn in the "answer"
        return user, self._strip_end(answer)

    def _strip_end(self, answer: str) -> str:
        """The answer without the end-of-turn the template or the policy's decoder leaves after it."""
        end = self.after_answer.rstrip()
        if end and answer.endswith(self.after_answer):
            return answer[: -len(self.after_answer)]
        stripped = True
        while stripped:  # trailing EOS, end-of-turn and pad tokens, in any order (vLLM keeps the stop token)
            stripped = False
            for token in self.special_tokens:
                if answer.endswith(token):
                    answer, stripped = answer[: -len(token)], True
                    break
        return answer
