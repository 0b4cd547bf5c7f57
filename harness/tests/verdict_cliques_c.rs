//! The C version of `verdict_cliques.rs`: A → B ⇄ C built by C code
//! (`pair_behind`), in every allocation order, is one definitely lost block
//! and two indirectly lost ones. A file of its own: see the note at the top
//! of `verdict_cliques.rs` on why these tests do not share a process.

mod common;

use leakcheck::{Kind, Origin, Status};
use leakcheck_test_support::{pair_behind, LIST_NODE_BYTES, PAIR_BEHIND_FN};
use std::hint::black_box;

use Kind::{DefinitelyLost, IndirectlyLost};

#[test]
fn the_c_shape_is_one_definite_two_indirect_in_every_order() {
    const A_BYTES: usize = 48;
    for order in ["ABC", "ACB", "BAC", "BCA", "CAB", "CBA"] {
        let report = leakcheck::check(|| pair_behind(black_box(order), A_BYTES).leak());
        let found = common::kinds(&report);
        let expected = vec![
            (DefinitelyLost, 1, A_BYTES),
            (IndirectlyLost, 2, 2 * LIST_NODE_BYTES),
        ];
        assert_eq!(found, expected, "order {order}\n{report}");
        assert_eq!(report.status(), Status::Leaked, "{report}");
        let definite = report.leaks().iter().find(|l| l.kind == DefinitelyLost);
        let definite = definite.unwrap_or_else(|| panic!("{report}"));
        assert_eq!(definite.origin, Origin::C, "{report}");
        common::assert_fixture_frame(&definite.stack[0], PAIR_BEHIND_FN, "pair_behind");
    }
}
