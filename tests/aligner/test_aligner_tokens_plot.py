import torch

from ns2.data.aligner.plot import figure_to_array, plot_alignment
from ns2.data.aligner.tokens import align_mask_for, compact_index, expand_durations, unaligned_ids


def test_compact_and_expand():
    phonemes = torch.tensor([[7, 4, 8, 4, 9], [4, 6, 4, 0, 0], [5, 0, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]).bool()
    keep = align_mask_for(phonemes, mask, [4])
    assert keep.tolist() == [[1, 0, 1, 0, 1], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0]]
    index, token_mask = compact_index(keep)
    assert (phonemes.gather(1, index) * token_mask).tolist() == [[7, 8, 9], [6, 0, 0], [5, 0, 0]]
    assert token_mask.tolist() == [[True] * 3, [True, False, False], [True, False, False]]
    durations = torch.tensor([[3, 2, 5], [6, 0, 0], [1, 0, 0]])
    full = expand_durations(durations, keep)
    assert full.tolist() == [[3, 0, 2, 0, 5], [0, 6, 0, 0, 0], [1, 0, 0, 0, 0]]
    assert full.sum(-1).tolist() == durations.sum(-1).tolist()


def test_nothing_to_skip_is_identity():
    phonemes = torch.tensor([[3, 5, 6]])
    keep = align_mask_for(phonemes, torch.ones(1, 3, dtype=torch.bool), [])
    index, token_mask = compact_index(keep)
    assert keep.all() and token_mask.all() and index.tolist() == [[0, 1, 2]]


def test_unaligned_ids_of_the_default_table():
    from ns2.text.symbols import DEFAULT_SYMBOLS as S

    skipped = set(S.decode(unaligned_ids(S)))
    assert {"|", ",", ".", "ˈ", "ˌ", "ː", "<pad>", "<bos>", "<eos>"} <= skipped
    assert "<sil>" not in skipped and not skipped & set(S.phones)
    assert unaligned_ids(S, ["|"]) == [S.word_boundary_id]
    assert unaligned_ids({"|": 9, "a": 1}) == [9]
    assert unaligned_ids(None) == []


def test_plot_writes_a_png(tmp_path):
    T, L = 50, 7
    soft = torch.softmax(torch.randn(T, L), -1)
    hard = torch.zeros(T, L)
    hard[torch.arange(T), torch.arange(T) * L // T] = 1
    path = tmp_path / "plots" / "a.png"
    fig = plot_alignment(soft, hard, torch.randn(80, T), [f"p{i}" for i in range(L)], title="utt", path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = figure_to_array(fig)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype.name == "uint8"
    plot_alignment(soft[None].numpy())  # no mel, no path, arrays with a leading 1
