//! Byte-level BPE encoding over compact tables: the GPT-2 pre-tokenizer
//! split (after SmolLM2's one-digit-per-piece split) and the lowest-rank-first
//! merge loop, reproducing the `tokenizers` crate's `Digits(individual) +
//! ByteLevel(regex, no prefix space)` + `BPE` pipeline id for id.
//!
//! Written by hand, with `tokenizers` kept as the test oracle, because the
//! crate's BPE model holds the vocabulary twice as owned `String`s in hash
//! maps (token → id and id → token) plus its merge map and word cache:
//! about 9 MB for a 49k-token vocabulary, close to a tenth of the 98 MB model
//! this engine has to fit in 1.3× its file size. Here the vocabulary is the
//! concatenated token bytes the streamer needs anyway, and the only table
//! is the merge map (`(left id, right id) → (rank, merged id)`), about 1 MB.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use regex::Regex;

/// GPT-2's pre-tokenizer pattern without its last-but-one alternative
/// `\s+(?!\S)`: the `regex` crate has no look-ahead, so [`split_words`]
/// applies that alternative's effect to the `\s+` matches itself.
const GPT2_SPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

/// The merge table and the single-byte token ids a word starts from.
pub(crate) struct Merges {
    /// `(left, right) → (rank, merged id)`.
    table: HashMap<(u32, u32), (u32, u32)>,
    /// Token id of each single byte (`None` when the vocabulary lacks it:
    /// such bytes are dropped, as the `tokenizers` BPE does without an
    /// unknown token).
    byte_ids: [Option<u32>; 256],
    split: Regex,
}

impl Merges {
    /// `merges` lists `(left, right, merged)` ids in rank order (rank = index).
    pub(crate) fn new(byte_ids: [Option<u32>; 256], merges: &[(u32, u32, u32)]) -> Self {
        let mut table = HashMap::with_capacity(merges.len());
        for (rank, &(l, r, m)) in merges.iter().enumerate() {
            // The first (lowest-rank) entry for a pair wins, as in `tokenizers`.
            table.entry((l, r)).or_insert((rank as u32, m));
        }
        Self {
            table,
            byte_ids,
            // A constant pattern: it compiles or the build is broken, and the
            // unit tests below compile it.
            split: Regex::new(GPT2_SPLIT).unwrap_or_else(|e| unreachable!("GPT-2 pattern: {e}")),
        }
    }

    /// Append the ids of `text` (no special tokens in it) to `out`.
    pub(crate) fn encode_into(&self, text: &str, out: &mut Vec<u32>) {
        for piece in split_digits(text) {
            for word in split_words(&self.split, piece) {
                self.merge_word(word.as_bytes(), out);
            }
        }
    }

    /// BPE of one pre-token: start from its bytes, repeatedly apply the
    /// lowest-rank merge (leftmost on ties), as `tokenizers`' `Word::merge_all`.
    fn merge_word(&self, bytes: &[u8], out: &mut Vec<u32>) {
        let mut syms: Vec<Sym> = bytes
            .iter()
            .filter_map(|&b| self.byte_ids[b as usize])
            .map(|id| Sym {
                id,
                prev: NONE,
                next: NONE,
                alive: true,
            })
            .collect();
        let n = syms.len();
        for (i, s) in syms.iter_mut().enumerate() {
            s.prev = if i == 0 { NONE } else { i - 1 };
            s.next = if i + 1 == n { NONE } else { i + 1 };
        }
        let mut heap = BinaryHeap::new();
        for i in 1..n {
            self.offer(&syms, i - 1, i, &mut heap);
        }
        while let Some(Reverse((rank, pos, merged))) = heap.pop() {
            let next = syms[pos].next;
            if !syms[pos].alive || next == NONE {
                continue;
            }
            // Stale entry: the pair at `pos` changed since it was pushed.
            if self.table.get(&(syms[pos].id, syms[next].id)) != Some(&(rank, merged)) {
                continue;
            }
            let after = syms[next].next;
            syms[pos].id = merged;
            syms[pos].next = after;
            syms[next].alive = false;
            if after != NONE {
                syms[after].prev = pos;
                self.offer(&syms, pos, after, &mut heap);
            }
            if syms[pos].prev != NONE {
                self.offer(&syms, syms[pos].prev, pos, &mut heap);
            }
        }
        out.extend(syms.iter().filter(|s| s.alive).map(|s| s.id));
    }

    fn offer(&self, syms: &[Sym], left: usize, right: usize, heap: &mut Heap) {
        if let Some(&(rank, merged)) = self.table.get(&(syms[left].id, syms[right].id)) {
            heap.push(Reverse((rank, left, merged)));
        }
    }
}

/// Candidate merges, lowest rank then leftmost position first.
type Heap = BinaryHeap<Reverse<(u32, usize, u32)>>;

/// "No neighbour" in the symbol list.
const NONE: usize = usize::MAX;

/// One symbol of a word being merged (a doubly linked list over a `Vec`).
struct Sym {
    id: u32,
    prev: usize,
    next: usize,
    alive: bool,
}

/// The `Digits(individual_digits = true)` pre-tokenizer: every numeric char
/// (`char::is_numeric`, what `tokenizers` tests) becomes a piece of its own;
/// the runs between them are pieces too.
fn split_digits(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let mut chars = rest.char_indices();
        let (_, first) = chars.next()?;
        let end = if first.is_numeric() {
            first.len_utf8()
        } else {
            chars
                .find(|(_, c)| c.is_numeric())
                .map_or(rest.len(), |(i, _)| i)
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The GPT-2 regex split of one piece. A whitespace run matched by `\s+`
/// that is followed by a non-space char gives back its last char (what
/// `\s+(?!\S)` does by backtracking), unless it is a single char, which the
/// final `\s+` alternative takes whole.
fn split_words<'t>(re: &Regex, piece: &'t str) -> Vec<&'t str> {
    let mut words = Vec::new();
    let mut at = 0;
    while at < piece.len() {
        let Some(m) = re.find_at(piece, at) else {
            // Every char is matched by one alternative; keep any rest whole.
            words.push(&piece[at..]);
            break;
        };
        let mut end = m.end();
        let word = m.as_str();
        let followed = piece[end..]
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace());
        if followed && word.chars().all(char::is_whitespace) && word.chars().nth(1).is_some() {
            let last = word.chars().next_back().map_or(0, char::len_utf8);
            end -= last;
        }
        // No alternative matches empty, and giving back one char of a run
        // of two or more leaves at least one, so the split always advances;
        // should that ever fail, the rest is kept whole rather than looping.
        if end <= at {
            words.push(&piece[at..]);
            break;
        }
        words.push(&piece[at..end]);
        at = end;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        let re = Regex::new(GPT2_SPLIT).unwrap();
        split_digits(text)
            .flat_map(|p| split_words(&re, p))
            .collect()
    }

    #[test]
    fn pre_tokenizer_splits_like_gpt2_with_single_digits() {
        assert_eq!(words("Hello world"), ["Hello", " world"]);
        assert_eq!(words("a  b"), ["a", " ", " b"]);
        assert_eq!(words("a \tb"), ["a", " ", "\t", "b"]);
        assert_eq!(words("end  "), ["end", "  "]);
        assert_eq!(words("x 2024!"), ["x", " ", "2", "0", "2", "4", "!"]);
        assert_eq!(words("it's"), ["it", "'s"]);
        assert_eq!(words("\n\nHi"), ["\n", "\n", "Hi"]);
        assert_eq!(words("¼ ²"), ["¼", " ", "²"]);
        assert!(words("").is_empty());
    }

    #[test]
    fn merges_apply_lowest_rank_first_and_leftmost_on_ties() {
        // Bytes a=0, b=1; merges: (a,a)->2 rank 0, (2,b)->3 rank 1.
        let mut byte_ids = [None; 256];
        byte_ids[b'a' as usize] = Some(0);
        byte_ids[b'b' as usize] = Some(1);
        let m = Merges::new(byte_ids, &[(0, 0, 2), (2, 1, 3)]);
        let enc = |w: &str| {
            let mut v = Vec::new();
            m.merge_word(w.as_bytes(), &mut v);
            v
        };
        assert_eq!(enc("aaa"), [2, 0], "leftmost pair merges first");
        assert_eq!(enc("aab"), [3]);
        assert_eq!(enc("aaab"), [2, 0, 1], "(a,b) has no merge");
        assert_eq!(enc("aaaab"), [2, 3]);
        assert_eq!(
            enc("c"),
            Vec::<u32>::new(),
            "bytes without a token are dropped"
        );
    }
}
