"""In-process speech synthesis with libespeak-ng (the build shipped by ``espeakng-loader``).

The C API is driven through ctypes in synchronous mode: ``espeak_Synth`` calls back with 16-bit
audio blocks and a list of events per block. With phoneme events enabled (in IPA), every phoneme
arrives with the sample at which it starts, which gives exact ground-truth phoneme timings.

The library keeps global state (one voice, one callback, wave-generator statics), so synthesis
uses a *private copy* of the shared object, mapped afresh per utterance: it is not disturbed by
other code in the process that loads libespeak-ng for itself (phonemizer, tests) with other
options, and the same arguments always give the same samples.

``espeak_EVENT`` (speak_lib.h, API revision 12, espeak-ng 1.52)::

    int type; unsigned int unique_identifier; int text_position; int length;
    int audio_position; int sample; void *user_data;
    union { int number; const char *name; char string[8]; } id;

Event types: 0 list terminated, 1 word, 2 sentence, 3 mark, 4 play, 5 end (of clause),
6 message terminated, 7 phoneme, 8 sample rate.
"""
from __future__ import annotations

import _ctypes
import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
OPT_PHONEME_EVENTS = 0x1
OPT_PHONEME_IPA = 0x2
OPT_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1

EVENT_WORD = 1
EVENT_SENTENCE = 2
EVENT_END = 5
EVENT_PHONEME = 7

PARAM_RATE = 1
PARAM_PITCH = 3
PARAM_RANGE = 4
PARAM_WORDGAP = 7


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded, initialised or asked for a voice."""


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Event:
    """One espeak event. ``kind`` is ``word`` | ``phoneme`` | ``sentence`` | ``end``.

    ``sample``: start sample in the utterance; ``name``: IPA phoneme name (``""`` for a pause);
    ``number``: 1-based word number for ``word`` events; ``text_position``/``length``: characters
    (1-based position) of the word in the synthesized text.
    """

    kind: str
    sample: int
    name: str = ""
    number: int = 0
    text_position: int = 0
    length: int = 0


@dataclass
class SynthOutput:
    """``audio: [S]`` int16 at ``sample_rate``; ``events`` in emission order."""

    audio: np.ndarray
    sample_rate: int
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class VoiceSettings:
    """An espeak voice (``en-us+f3``) and its prosody parameters (rate in words per minute,
    pitch and range 0..100, word gap in units of 10 ms)."""

    voice: str = "en-us"
    rate: int = 175
    pitch: int = 50
    range: int = 50
    word_gap: int = 0


_KINDS = {EVENT_WORD: "word", EVENT_SENTENCE: "sentence", EVENT_END: "end", EVENT_PHONEME: "phoneme"}


class Espeak:
    """libespeak-ng with IPA phoneme events, loaded afresh for every utterance; use :func:`get_espeak`.

    The wave generator keeps state in function-static variables (pitch flutter index, echo buffer,
    noise generators) that no API call resets, so two calls with the same text would differ by a
    few samples. Each :meth:`synthesize` therefore maps a private copy of the library, initialises
    it, speaks and unloads it again (about 3 ms): the output depends only on the arguments.
    """

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover
            raise EspeakError("the synthetic corpus needs the 'espeakng-loader' package (pip install espeakng-loader)") from e
        lib_path = Path(espeakng_loader.get_library_path())
        self.data_parent = Path(espeakng_loader.get_data_path()).parent
        if not lib_path.exists():
            raise EspeakError(f"libespeak-ng not found at {lib_path} (reinstall espeakng-loader)")
        self._tmpdir = tempfile.mkdtemp(prefix="ns2-espeak-")
        atexit.register(shutil.rmtree, self._tmpdir, True)
        self.lib_path = Path(self._tmpdir) / lib_path.name
        shutil.copyfile(lib_path, self.lib_path)
        self._chunks: list[np.ndarray] = []
        self._events: list[Event] = []
        self._error: BaseException | None = None
        self._callback = _CALLBACK(self._on_block)  # keep a reference: the library holds the pointer
        self._lock = threading.Lock()
        lib = self._load()
        try:
            self.sample_rate = self._initialize(lib)
        finally:
            self._unload(lib)

    # ------------------------------------------------------------------ library lifetime
    def _load(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(str(self.lib_path), mode=os.RTLD_LOCAL)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        return lib

    def _initialize(self, lib: ctypes.CDLL) -> int:
        options = OPT_PHONEME_EVENTS | OPT_PHONEME_IPA | OPT_DONT_EXIT
        sr = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_parent).encode(), options)
        if sr <= 0:
            raise EspeakError(f"espeak_Initialize failed with data folder {self.data_parent} (expected it to contain espeak-ng-data)")
        lib.espeak_SetSynthCallback(self._callback)
        return sr

    @staticmethod
    def _unload(lib: ctypes.CDLL) -> None:
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)

    def _on_block(self, wav, numsamples, events) -> int:
        try:
            if wav and numsamples > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            i = 0
            while events[i].type != 0:
                e = events[i]
                kind = _KINDS.get(e.type)
                if kind == "phoneme":
                    name = bytes(e.id.string).split(b"\0", 1)[0].decode("utf-8")
                    self._events.append(Event(kind, e.sample, name=name, text_position=e.text_position))
                elif kind is not None:
                    self._events.append(Event(kind, e.sample, number=e.id.number, text_position=e.text_position,
                                              length=e.length))
                i += 1
        except BaseException as err:  # never let an exception cross the C boundary
            self._error = err
            return 1
        return 0

    # ------------------------------------------------------------------ synthesis
    def synthesize(self, text: str, settings: VoiceSettings = VoiceSettings()) -> SynthOutput:
        """Speak ``text`` with ``settings`` -> audio ``[S]`` int16 and the event list."""
        if not text.strip():
            raise ValueError("espeak synthesize: text is empty")
        with self._lock:
            lib = self._load()
            try:
                sr = self._initialize(lib)
                lib.espeak_ng_SetRandSeed(0)
                if lib.espeak_SetVoiceByName(settings.voice.encode()) != 0:
                    raise EspeakError(f"espeak voice {settings.voice!r} not found (expected e.g. 'en-us', 'en-us+m3')")
                for param, value in ((PARAM_RATE, settings.rate), (PARAM_PITCH, settings.pitch),
                                     (PARAM_RANGE, settings.range), (PARAM_WORDGAP, settings.word_gap)):
                    if lib.espeak_SetParameter(param, int(value), 0) != 0:
                        raise EspeakError(f"espeak_SetParameter({param}, {value}) failed for voice {settings.voice!r}")
                self._chunks, self._events, self._error = [], [], None
                data = text.encode("utf-8")
                rc = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
                if rc != 0:
                    raise EspeakError(f"espeak_Synth failed with code {rc} for text {text!r}")
                if self._error is not None:
                    raise EspeakError(f"espeak callback failed: {self._error}") from self._error
            finally:
                self._unload(lib)
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            events, self._chunks, self._events = self._events, [], []
            return SynthOutput(audio.astype(np.int16, copy=False), sr, events)


_INSTANCE: Espeak | None = None
_INSTANCE_LOCK = threading.Lock()


def get_espeak() -> Espeak:
    """The process-wide private :class:`Espeak` (loaded on first use)."""
    global _INSTANCE
    with _INSTANCE_LOCK:
        if _INSTANCE is None:
            _INSTANCE = Espeak()
        return _INSTANCE
