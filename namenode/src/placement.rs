//! Choosing DataNodes for new replicas. Pure: candidates and randomness come in as arguments.
//!
//! Policy: never two replicas on one DataNode; only live, non-decommissioning nodes with room for
//! a whole block. The first replica goes to the writer's host when a DataNode runs there (the
//! cheapest hop), unless every candidate shares one host (a local cluster), where that rule
//! means nothing and we just spread. The rest go by most remaining space, ties broken by fewer
//! blocks, then randomly.

use std::collections::HashSet;

use crate::util::Rng;

/// A DataNode as placement sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub uuid: String,
    pub host: String,
    pub remaining: u64,
    pub num_blocks: u64,
}

/// Picks up to `n` targets, in pipeline order. Returns fewer when fewer qualify (possibly none:
/// the caller turns that into `NoLiveDatanodes`).
pub fn choose_targets(
    candidates: &[Candidate],
    n: usize,
    client_host: Option<&str>,
    exclude: &HashSet<String>,
    block_size: u64,
    rng: &mut Rng,
) -> Vec<String> {
    let mut pool: Vec<(&Candidate, u64)> = candidates
        .iter()
        .filter(|c| !exclude.contains(&c.uuid) && c.remaining >= block_size)
        .map(|c| (c, rng.next_u64()))
        .collect();
    // Most room first, then fewest blocks, then random.
    pool.sort_by(|(a, ra), (b, rb)| {
        b.remaining
            .cmp(&a.remaining)
            .then(a.num_blocks.cmp(&b.num_blocks))
            .then(ra.cmp(rb))
    });
    let mut out: Vec<String> = Vec::with_capacity(n);
    let single_host = pool.windows(2).all(|w| w[0].0.host == w[1].0.host);
    if let (Some(host), false) = (client_host, single_host) {
        if let Some((local, _)) = pool.iter().find(|(c, _)| c.host == host) {
            out.push(local.uuid.clone());
        }
    }
    for (c, _) in &pool {
        if out.len() >= n {
            break;
        }
        if !out.contains(&c.uuid) {
            out.push(c.uuid.clone());
        }
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(uuid: &str, host: &str, remaining: u64, blocks: u64) -> Candidate {
        Candidate {
            uuid: uuid.into(),
            host: host.into(),
            remaining,
            num_blocks: blocks,
        }
    }

    #[test]
    fn writer_host_first_then_most_remaining() {
        let cands = vec![
            c("a", "h1", 100, 0),
            c("b", "h2", 500, 0),
            c("c", "h3", 300, 0),
            c("d", "h3", 50, 0),
        ];
        let mut rng = Rng::new(1);
        let t = choose_targets(&cands, 3, Some("h1"), &HashSet::new(), 10, &mut rng);
        assert_eq!(t, vec!["a", "b", "c"]);
        let t = choose_targets(&cands, 3, Some("elsewhere"), &HashSet::new(), 10, &mut rng);
        assert_eq!(t, vec!["b", "c", "a"]);
    }

    #[test]
    fn excludes_full_and_excluded_and_returns_fewer() {
        let cands = vec![
            c("a", "h1", 5, 0),
            c("b", "h2", 500, 0),
            c("c", "h3", 300, 0),
        ];
        let mut rng = Rng::new(1);
        let ex: HashSet<String> = ["b".to_string()].into();
        let t = choose_targets(&cands, 3, None, &ex, 10, &mut rng);
        assert_eq!(t, vec!["c"]);
        assert!(choose_targets(&[], 3, None, &HashSet::new(), 10, &mut rng).is_empty());
    }

    #[test]
    fn local_cluster_spreads_by_blocks_then_randomly() {
        let cands = vec![
            c("a", "127.0.0.1", 100, 5),
            c("b", "127.0.0.1", 100, 1),
            c("c", "127.0.0.1", 100, 3),
        ];
        let mut rng = Rng::new(7);
        let t = choose_targets(&cands, 2, Some("127.0.0.1"), &HashSet::new(), 10, &mut rng);
        assert_eq!(t, vec!["b", "c"]);
        // Full ties: every node gets picked first sometimes.
        let tied = vec![c("a", "h", 1, 0), c("b", "h", 1, 0), c("c", "h", 1, 0)];
        let firsts: HashSet<String> = (0..50)
            .map(|_| choose_targets(&tied, 1, Some("h"), &HashSet::new(), 1, &mut rng)[0].clone())
            .collect();
        assert_eq!(firsts.len(), 3);
    }
}
