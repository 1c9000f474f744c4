//! `--partition k/n`: the k-th of n shards of the selected fixtures. A
//! fixture's shard comes from a hash of its name alone (FNV-1a, fixed here,
//! never std's hasher), so every fixture is in exactly one shard and stays
//! there across runs, machines and versions, whatever else is added.

use std::str::FromStr;

/// One shard of n, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which shard, 1..=count.
    pub shard: u32,
    /// How many shards.
    pub count: u32,
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Partition, String> {
        let bad = || format!("`{text}`: expected k/n with 1 <= k <= n, e.g. 1/3");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (shard, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if shard == 0 || count == 0 || shard > count {
            return Err(bad());
        }
        Ok(Partition { shard, count })
    }
}

impl Partition {
    /// Whether fixture `name` belongs to this shard.
    pub fn contains(&self, name: &str) -> bool {
        (fnv1a(name.as_bytes()) % u64::from(self.count)) as u32 == self.shard - 1
    }
}

/// FNV-1a, 64 bits: stable by definition.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(
            "2/3".parse::<Partition>(),
            Ok(Partition { shard: 2, count: 3 })
        );
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/3/4"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_name_is_in_exactly_one_shard() {
        let names: Vec<String> = (0..500).map(|i| format!("group/fixture-{i}")).collect();
        for count in 1..=7 {
            for name in &names {
                let shards = (1..=count)
                    .filter(|&shard| Partition { shard, count }.contains(name))
                    .count();
                assert_eq!(shards, 1, "{name} in {shards} of {count}");
            }
        }
        // Fixed values: the same shard on every machine and version.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
