//! Test-only helpers shared by the unit tests of the parsers (ACL, CORS): a tiny
//! deterministic mutator for their in-test fuzz loops.

/// Tiny xorshift64: deterministic, dependency-free randomness for the mutation loop.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

/// One to three edits (bit flips, deletions, insertions of `tokens` or of other parts of the
/// input); most are small so a fair share of mutants still parse and reach the validation
/// behind the parser.
pub fn mutate(rng: &mut XorShift, input: &[u8], tokens: &[&str]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(data.len() + 1);
        match rng.below(10) {
            0 if at < data.len() => data[at] ^= 1 << rng.below(8),
            1 if at < data.len() => {
                let end = (at + 1 + rng.below(4)).min(data.len());
                data.drain(at..end);
            }
            2 => data.insert(at, rng.next() as u8),
            3..=5 => {
                let token = tokens[rng.below(tokens.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            6 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + 1 + rng.below(64)).min(data.len());
                let chunk = data[start..end].to_vec();
                data.splice(at..at, chunk);
            }
            7 if at < data.len() => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                let token = tokens[rng.below(tokens.len())].as_bytes();
                data.splice(at..end, token.iter().copied());
            }
            8 if at < data.len() => {
                let end = (at + 1 + rng.below(32)).min(data.len());
                data.drain(at..end);
            }
            _ => data.truncate(at),
        }
    }
    data
}
