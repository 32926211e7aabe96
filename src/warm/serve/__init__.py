"""The HTTP reward server (`warm serve`): any scorer spec behind an OpenRLHF-compatible API.

Why a server at all: RLHF frameworks (OpenRLHF's `--remote_rm_url`, and others that POST text and read back
floats) call the reward model over HTTP, so the trainer and the reward model can live on different processes or
machines. It is also where WARM's point shows in production: a weight-averaged model costs one forward pass per
request, a prediction ensemble (ENS) of M members costs M.

Modules: `settings` (the limits, validated once), `batcher` (micro-batching of concurrent requests onto one worker
thread), `bodies` (request bodies: size limits, parsing, per-field errors), `scoring` (the scorer seen through
the batcher, and the /v1/info description), `app` (the FastAPI routes), `command` (the click command).
Nothing here imports FastAPI at package import, so `warm --help` stays fast.
"""
