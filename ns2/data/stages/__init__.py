"""Preparation stages and the runner that drives them (:mod:`.runner`)."""
from ns2.data.stages.runner import *  # noqa: F401,F403
