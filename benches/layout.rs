//! Layout evaluation: the time to place 25 participants (with a screen share and a
//! speaker) for each built-in layout, and to turn the placements into layers and texts.
//! Pure CPU work that runs every frame; it should take microseconds.
// criterion_group! makes an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tessera::layout::{LayoutLibrary, Member, Roster};

fn evaluate(c: &mut Criterion) {
    let lib = LayoutLibrary::builtin();
    let members: Vec<Member> = (0..25)
        .map(|i| Member {
            identity: format!("participant-{i}"),
            name: format!("Participant {i}"),
            aspect: (i % 7 != 3).then_some(16.0 / 9.0),
        })
        .collect();
    let mut group = c.benchmark_group("layout evaluation, 25 participants, 720p");
    for name in ["grid", "speaker", "single-speaker", "presentation", "pip"] {
        let layout = lib.resolve(name).unwrap();
        for share in [false, true] {
            let roster = Roster {
                members: &members,
                screen_share: share.then_some((0, 16.0 / 9.0)),
                speaker: Some(7),
            };
            let id = format!("{name}{}", if share { "+share" } else { "" });
            group.bench_with_input(BenchmarkId::new("place", &id), &roster, |b, r| {
                b.iter(|| black_box(layout.layout.place(black_box(r), 1280, 720)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
