//! Image outputs: thumbnails from the composited frames at the requested size, counted by
//! capture interval, JPEG or PNG, numbered or overwriting.

use crate::common;

use common::*;

#[test]
fn jpeg_thumbnails_every_interval_at_the_requested_size() {
    let _shared = common::shared();
    let request = r#"{
      "room_name": "thumbs",
      "image_outputs": [
        {"capture_interval": 1, "width": 320, "height": 180, "filename_prefix": "img/t"},
        {"capture_interval": 2, "filename_prefix": "img/latest",
         "filename_suffix": "IMAGE_SUFFIX_NONE_OVERWRITE", "image_codec": "IC_PNG",
         "width": 240, "height": 240}
      ]
    }"#;
    let secs = 5.0;
    let run = tessera_run(
        request,
        &["--duration", "5", "--fast", "--room", "synthetic:2"],
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    let info = run.info.as_ref().unwrap();
    let dir = run.dir.path().join("out/img");
    let mut jpegs: Vec<_> = files_under(&dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "jpeg"))
        .collect();
    jpegs.sort();
    let expected = (secs / 1.0_f64).floor() as i64;
    assert!(
        (jpegs.len() as i64 - expected).abs() <= 1,
        "{} images for {secs} s at 1 s",
        jpegs.len()
    );
    assert_eq!(
        num(&info["image_results"][0]["image_count"]) as usize,
        jpegs.len()
    );
    assert_eq!(info["image_results"][0]["filename_prefix"], "img/t");
    assert!(jpegs[0].ends_with("t_00000.jpeg"), "{:?}", jpegs[0]);
    for j in &jpegs {
        let probe = ffprobe(j);
        let v = stream(&probe, "video");
        assert_eq!(v["codec_name"], "mjpeg");
        assert_eq!((num(&v["width"]), num(&v["height"])), (320.0, 180.0));
    }
    // The PNG thumbnail is overwritten in place: one file, the right size, several
    // captures counted.
    let png = dir.join("latest.png");
    let probe = ffprobe(&png);
    let v = stream(&probe, "video");
    assert_eq!(v["codec_name"], "png");
    assert_eq!((num(&v["width"]), num(&v["height"])), (240.0, 240.0));
    assert_eq!(num(&info["image_results"][1]["image_count"]), 3.0);
    assert_eq!(
        files_under(&dir)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "png"))
            .count(),
        1
    );
}
