//! The `tessera` command line: the CLI edge (anyhow lives here only).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gstreamer as gst;
use livekit_protocol::EgressStatus;
use tessera::compositor::{Backend, BackendChoice, GpuContext};
use tessera::egress::{self, RunOptions, StatusSink, Stop, StopReason};
use tessera::launch::{Compositing, LaunchOptions, Room, RoomServer, run_job};
use tessera::layout::LayoutLibrary;
use tessera::request;
use tessera::request::PagePolicy;
use tessera::source::synthetic::{DEFAULT_SIZE, SyntheticRoom};

/// The request `tessera run` uses when none is given.
const DEFAULT_REQUEST: &str = include_str!("../examples/room-composite.json");
/// Participants of the default synthetic room.
const DEFAULT_ROOM: &str = "synthetic:4";

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "GPU-composited, LiveKit-compatible egress"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one egress from a LiveKit request (JSON: RoomComposite, Participant,
    /// TrackComposite, Track, or the v2 StartEgressRequest) and print the final EgressInfo
    /// as JSON on stdout.
    Run(RunArgs),
    /// Run as an egress worker: psrpc over Redis behind livekit-server (LiveKit egress's
    /// configuration keys), and/or LiveKit's Egress API served over Twirp (standalone,
    /// `tessera.api_port`). SIGTERM drains.
    Serve(ServeArgs),
    /// Show which GPU adapter and video encoder this machine would use.
    Probe,
    /// Layout authors' tools: check a template file, preview it (and watch it).
    #[command(subcommand)]
    Layout(cli::layout_tools::LayoutCommand),
    /// Capacity harness: how many rooms of a shape this node holds in real time, against
    /// a plain GStreamer pipeline and LiveKit's cost model. Writes report.json, report.md,
    /// report.svg and cost-profile.json. `tessera bench compare A.json B.json` compares two.
    Bench(BenchArgs),
}

/// `tessera run`'s arguments.
#[derive(clap::Args)]
struct RunArgs {
    /// The request file; without it, an embedded default (room "demo", grid, 720p30, MP4).
    /// Its type is told by its fields: `outputs` (with `template` or `media`) → v2
    /// StartEgressRequest; `track_id` → Track; `audio_track_id`/`video_track_id` →
    /// TrackComposite; `identity` → Participant; otherwise RoomComposite.
    request: Option<PathBuf>,
    /// Room source: `synthetic:N` (N synthetic participants), with options after
    /// commas: `grain=A` (camera noise), `speak=S` (participants take turns speaking,
    /// S seconds each), `share=K` (participant K shares a screen), `nocam=K`
    /// (participant K's camera is off; K is 1-based, repeatable). Default: synthetic:4.
    #[arg(long, conflicts_with = "url")]
    room: Option<String>,
    /// Record a real LiveKit room (the request's `room_name`) on this server
    /// (`ws://host:7880`) instead of a synthetic one.
    #[arg(long, env = "LIVEKIT_URL", conflicts_with = "fast")]
    url: Option<String>,
    /// API key for `--url`.
    #[arg(long, env = "LIVEKIT_API_KEY", requires = "url")]
    api_key: Option<String>,
    /// API secret for `--url`.
    #[arg(
        long,
        env = "LIVEKIT_API_SECRET",
        requires = "url",
        hide_env_values = true
    )]
    api_secret: Option<String>,
    /// Participant and track egress: how long to wait for the participant to join and
    /// publish, or for the track, before ending ABORTED.
    #[arg(long, default_value_t = tessera::source::livekit::AWAIT_TIMEOUT.as_secs_f64())]
    await_timeout: f64,
    /// Stop after this many seconds of media (default: run until SIGINT/SIGTERM).
    #[arg(long, allow_negative_numbers = true)]
    duration: Option<f64>,
    /// Directory local files are written under.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Extra layout templates (`*.toml`), overriding the built-in ones by name.
    #[arg(long)]
    layouts: Option<PathBuf>,
    /// Render as fast as possible instead of pacing to the wall clock.
    #[arg(long)]
    fast: bool,
    /// A web page may not reach loopback or private addresses either (link-local and
    /// cloud metadata addresses are always refused).
    #[arg(long)]
    refuse_private_pages: bool,
    /// Read control requests from stdin, one JSON object per line: LiveKit's
    /// UpdateStreamRequest (`{"add_output_urls": [...], "remove_output_urls": [...]}`)
    /// or UpdateLayoutRequest (`{"layout": "grid-light"}`). Each answer is one line on
    /// stderr: `update_stream: {EgressInfo JSON}`, `update_layout: NAME`, or
    /// `update_stream error: ...` / `update_layout error: ...`.
    #[arg(long)]
    control_stdin: bool,
    /// Worker configuration (the YAML file `tessera serve` reads, checked the same way):
    /// here only its storage keys apply: `storage` (the default store for outputs without
    /// their own: `s3`, `alioss`, `gcp`, `azure`, and `prefix`), `backup` (where files go
    /// whose upload failed), `disallow_local_storage` and `tessera.upload_deadline`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Compositor: auto (the GPU on a hardware adapter, the CPU when the only adapter is a
    /// software one such as lavapipe, or there is none), gpu (any adapter, software ones
    /// included) or cpu.
    #[arg(long, env = "TESSERA_COMPOSITOR", value_enum, default_value_t)]
    compositor: BackendChoice,
}

/// `tessera serve`'s arguments.
#[derive(clap::Args)]
struct ServeArgs {
    /// The worker's YAML configuration (LiveKit egress's keys: api_key, api_secret,
    /// ws_url, redis, health_port, prometheus_port, cluster_id, logging, session_limits,
    /// storage, backup, cpu_cost; tessera's own under `tessera:`). Without it, the text of
    /// EGRESS_CONFIG_BODY.
    #[arg(long, env = "EGRESS_CONFIG_FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BenchArgs {
    #[command(subcommand)]
    action: Option<BenchAction>,
    /// Participants per room (each decodes its own copy of the input clip).
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Input clip size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x360")]
    input: String,
    /// Input clip codec: h264 or vp8.
    #[arg(long, default_value = "h264")]
    codec: String,
    /// Layout name.
    #[arg(long, default_value = "grid")]
    layout: String,
    /// Output preset (LiveKit's names).
    #[arg(long, default_value = "H264_720P_30")]
    preset: String,
    /// Outputs per room, comma-separated: file, hls, images, rtmp (to a local nginx-rtmp
    /// the bench starts; needs libnginx-mod-rtmp).
    #[arg(long, default_value = "file")]
    outputs: String,
    /// Measured seconds per step (after a 1.5 s warm-up).
    #[arg(long, default_value_t = 10.0)]
    step_seconds: f64,
    /// Most rooms to try.
    #[arg(long, default_value_t = 32)]
    max_rooms: u32,
    /// Skip the GStreamer baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Where the report goes.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Compositor: auto (the GPU on a hardware adapter, the CPU when the only adapter is a
    /// software one such as lavapipe, or there is none), gpu (any adapter, software ones
    /// included) or cpu.
    #[arg(long, env = "TESSERA_COMPOSITOR", value_enum, default_value_t)]
    compositor: BackendChoice,
}

#[derive(Subcommand)]
enum BenchAction {
    /// Compare two reports (two nodes, or two versions) as a Markdown table.
    Compare {
        /// The first report.json.
        a: PathBuf,
        /// The second report.json.
        b: PathBuf,
    },
}

fn bench(args: BenchArgs) -> Result<bool> {
    use tessera::bench;
    if let Some(BenchAction::Compare { a, b }) = args.action {
        let (a, b) = (bench::read_report(&a)?, bench::read_report(&b)?);
        print!("{}", bench::report::compare(&a, &b));
        return Ok(true);
    }
    let (w, h) = args
        .input
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|&(w, h)| w >= 16 && h >= 16 && w % 2 == 0 && h % 2 == 0)
        .with_context(|| {
            format!(
                "--input: expected WIDTHxHEIGHT (even), got {:?}",
                args.input
            )
        })?;
    let codec = match args.codec.as_str() {
        "h264" => tessera::source::clip::ClipCodec::H264,
        "vp8" => tessera::source::clip::ClipCodec::Vp8,
        other => bail!("--codec: expected h264 or vp8, got {other:?}"),
    };
    let outputs: Vec<String> = args
        .outputs
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    if let Some(bad) = outputs
        .iter()
        .find(|o| !["file", "hls", "images", "rtmp"].contains(&o.as_str()))
    {
        bail!("--outputs: expected file, hls, images or rtmp, got {bad:?}");
    }
    if !(args.step_seconds.is_finite() && args.step_seconds >= 1.0) {
        bail!(
            "--step-seconds: must be at least 1, got {}",
            args.step_seconds
        );
    }
    gst::init().context("initialising GStreamer")?;
    let opts = bench::BenchOptions {
        shape: bench::Shape {
            participants: args.participants,
            input_width: w,
            input_height: h,
            codec,
            layout: args.layout,
            preset: args.preset,
            outputs,
            rtmp_url: None,
        },
        step_seconds: args.step_seconds,
        policy: bench::ramp::Policy {
            max_rooms: args.max_rooms,
            ..Default::default()
        },
        baseline: !args.no_baseline,
        compositor: args.compositor,
        clip_dir: args.out.join("clips"),
        out_dir: args.out,
    };
    let report = bench::run(&opts, &mut |line| eprintln!("bench: {line}"))?;
    print!("{}", report.markdown());
    eprintln!(
        "bench: wrote {}/report.json, report.md, report.svg, cost-profile.json",
        opts.out_dir.display()
    );
    Ok(true)
}

/// `synthetic:N[,grain=A][,speak=S][,share=K][,nocam=K...]`: camera-like noise of
/// amplitude A levels; turns of S seconds speaking; participant K shares a screen /
/// has no camera (1-based).
fn parse_room(spec: &str) -> Result<SyntheticRoom> {
    let Some(rest) = spec.strip_prefix("synthetic:") else {
        bail!(
            "--room: {spec:?} is not available; this version records synthetic rooms only (synthetic:N)"
        );
    };
    let mut parts = rest.split(',');
    let n = parts.next().unwrap_or_default();
    let n: usize = n
        .parse()
        .with_context(|| format!("--room: {n:?} is not a participant count"))?;
    if !(1..=64).contains(&n) {
        bail!("--room: participant count must be 1..=64, got {n}");
    }
    let mut room = SyntheticRoom::new(n, DEFAULT_SIZE.0, DEFAULT_SIZE.1);
    for option in parts {
        match option.split_once('=') {
            Some(("grain", a)) => {
                let a: u8 = a
                    .parse()
                    .ok()
                    .filter(|a| *a <= 64)
                    .with_context(|| format!("--room: grain must be 0..=64, got {a:?}"))?;
                room = room.with_grain(a);
            }
            Some(("speak", s)) => {
                let s: f64 = s
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.1)
                    .with_context(|| format!("--room: speak must be at least 0.1 s, got {s:?}"))?;
                room = room.with_speaking_turns(Duration::from_secs_f64(s));
            }
            Some((key @ ("share" | "nocam"), k)) => {
                let k: usize = k
                    .parse()
                    .ok()
                    .filter(|k| (1..=n).contains(k))
                    .with_context(|| {
                        format!("--room: {key} must be a participant 1..={n}, got {k:?}")
                    })?;
                room = if key == "share" {
                    room.with_screen_share(k - 1)
                } else {
                    room.without_camera(k - 1)
                };
            }
            _ => bail!(
                "--room: unknown option {option:?} (known: grain=A, speak=S, share=K, nocam=K)"
            ),
        }
    }
    Ok(room)
}

fn run(args: RunArgs) -> Result<bool> {
    let RunArgs {
        request,
        room,
        url,
        api_key,
        api_secret,
        await_timeout,
        duration,
        out,
        layouts,
        fast,
        refuse_private_pages,
        control_stdin,
        compositor,
        config,
    } = args;
    let storage = match &config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            tessera::config::ConfigFile::parse(&text)
                .and_then(|f| f.storage_defaults())
                .with_context(|| format!("{}", path.display()))?
        }
        None => Default::default(),
    };
    let text = match &request {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => DEFAULT_REQUEST.to_owned(),
    };
    let library = match &layouts {
        Some(dir) => LayoutLibrary::with_dir(dir)?,
        None => LayoutLibrary::builtin(),
    };
    let job = request::plan_request(&text, &library)?;
    let duration = match duration {
        Some(d) if !(d.is_finite() && d > 0.0) => {
            bail!("--duration: must be a positive number of seconds, got {d}")
        }
        Some(d) => Some(Duration::from_secs_f64(d)),
        None => None,
    };
    if !(await_timeout.is_finite() && await_timeout > 0.0) {
        bail!("--await-timeout: must be a positive number of seconds, got {await_timeout}");
    }
    let await_timeout = Duration::from_secs_f64(await_timeout);
    let server = match url {
        Some(url) => {
            let (Some(key), Some(secret)) = (api_key, api_secret) else {
                bail!("--url needs --api-key and --api-secret (or LIVEKIT_API_KEY/SECRET)");
            };
            Some(RoomServer {
                url,
                key,
                secret: secret.into(),
            })
        }
        None => None,
    };
    gst::init().context("initialising GStreamer")?;
    let egress_id = tessera::info::new_egress_id();

    let stop = Stop::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let signal_stop = stop.clone();
    runtime.spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        tracing::info!("stop requested; finishing the recording");
        signal_stop.request(StopReason::Killed);
    });
    let control = control_stdin.then(spawn_stdin_control);
    let opts = RunOptions {
        out_dir: out,
        duration,
        stop: stop.clone(),
        realtime: !fast,
        control,
        stats: None,
        storage,
        limit: None,
        status: StatusSink::none(),
    };
    let room = match server {
        Some(s) => Room::LiveKit(s),
        None => Room::Synthetic(parse_room(room.as_deref().unwrap_or(DEFAULT_ROOM))?),
    };
    let launch = LaunchOptions {
        await_timeout,
        compositing: Compositing::Open(compositor),
        fast,
        page_policy: PagePolicy {
            refuse_private: refuse_private_pages,
        },
    };
    let info = runtime.block_on(async {
        tokio::task::spawn_blocking(move || run_job(&egress_id, job, room, opts, &launch)).await
    })??;
    print_info(&info)
}

/// Prints the final info on stdout and a summary on stderr; true when COMPLETE.
fn print_info(info: &livekit_protocol::EgressInfo) -> Result<bool> {
    println!(
        "{}",
        serde_json::to_string_pretty(&tessera::info::to_json(info))?
    );
    for f in &info.file_results {
        eprintln!("recorded {} ({} bytes)", f.location, f.size);
    }
    for s in &info.segment_results {
        eprintln!(
            "recorded {} ({} segments)",
            s.playlist_location, s.segment_count
        );
    }
    Ok(info.status == EgressStatus::EgressComplete as i32)
}

/// Reads UpdateStreamRequests and UpdateLayoutRequests from stdin (one JSON object per
/// line) and forwards them to the egress; prints each answer on stderr.
fn spawn_stdin_control() -> std::sync::mpsc::Receiver<egress::Control> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let is_layout = serde_json::from_str::<serde_json::Value>(&line)
                .is_ok_and(|v| v.get("layout").is_some());
            if is_layout {
                let request: livekit_protocol::UpdateLayoutRequest =
                    match serde_json::from_str(&line) {
                        Ok(r) => r,
                        Err(e) => {
                            eprintln!("update_layout error: not an UpdateLayoutRequest: {e}");
                            continue;
                        }
                    };
                let (reply, answer) = std::sync::mpsc::channel();
                let control = egress::Control::UpdateLayout {
                    layout: request.layout,
                    reply,
                };
                if tx.send(control).is_err() {
                    break;
                }
                match answer.recv() {
                    Ok(Ok(name)) => eprintln!("update_layout: {name}"),
                    Ok(Err(e)) => eprintln!("update_layout error: {e}"),
                    Err(_) => break,
                }
                continue;
            }
            let request: livekit_protocol::UpdateStreamRequest = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("update_stream error: not an UpdateStreamRequest: {e}");
                    continue;
                }
            };
            let (reply, answer) = std::sync::mpsc::channel();
            if tx
                .send(egress::Control::UpdateStream { request, reply })
                .is_err()
            {
                break;
            }
            match answer.recv() {
                Ok(Ok(info)) => eprintln!(
                    "update_stream: {}",
                    serde_json::to_string(&tessera::info::to_json(&info)).unwrap_or_default()
                ),
                Ok(Err(e)) => eprintln!("update_stream error: {e}"),
                Err(_) => break,
            }
        }
    });
    rx
}

/// Reads the worker's configuration (file, or EGRESS_CONFIG_BODY) with the environment.
fn serve_config(args: &ServeArgs) -> Result<tessera::service::ServiceConfig> {
    let text = match &args.config {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => std::env::var("EGRESS_CONFIG_BODY").unwrap_or_default(),
    };
    Ok(tessera::service::ServiceConfig::parse(&text, |k| {
        std::env::var(k).ok()
    })?)
}

fn serve(config: tessera::service::ServiceConfig) -> Result<bool> {
    tessera::service::serve(config, |bound| {
        for a in &bound.addrs {
            eprintln!("serving on http://{a}");
        }
    })?;
    Ok(true)
}

/// The file an element's plugin was loaded from.
fn plugin_file(factory: &str) -> String {
    gst::ElementFactory::find(factory)
        .and_then(|f| gst::prelude::PluginFeatureExt::plugin(&f))
        .and_then(|p| p.filename())
        .map_or_else(|| "unknown plugin file".into(), |f| f.display().to_string())
}

/// The path of a shared library this process has mapped, from `/proc/self/maps`.
fn loaded_library(stem: &str) -> String {
    std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| {
            maps.lines()
                .filter_map(|l| l.split_whitespace().nth(5))
                .find(|p| p.rsplit('/').next().is_some_and(|f| f.starts_with(stem)))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("{stem} not found in /proc/self/maps"))
}

fn probe() -> Result<bool> {
    gst::init()?;
    match GpuContext::new() {
        Ok(gpu) => println!(
            "gpu: {} ({:?}, {:?})",
            gpu.info.name, gpu.info.device_type, gpu.info.backend
        ),
        Err(e) => println!("gpu: none ({e})"),
    }
    println!(
        "compositor (auto): {}",
        Backend::open(BackendChoice::Auto)?.describe()
    );
    println!(
        "gstreamer: {}, {}",
        gst::version_string(),
        loaded_library("libgstreamer-1.0")
    );
    let choice = tessera::encode::probe_video_encoder()?;
    println!(
        "video encoder: {}, from {}",
        choice.factory,
        plugin_file(choice.factory)
    );
    for (f, why) in choice.skipped {
        println!("  skipped {f}: {why}");
    }
    match tessera::encode::aac_encoder() {
        Some(f) => println!("audio encoder (AAC): {f}, from {}", plugin_file(f)),
        None => println!("audio encoder (AAC): none (avenc_aac and voaacenc are missing)"),
    }
    for choice in tessera::source::decoders::probe_video_decoders() {
        let from = choice.factory().map(plugin_file).unwrap_or_default();
        println!("video decoder {}, from {from}", choice.summary());
        for (f, why) in choice.skipped {
            println!("  skipped {f}: {why}");
        }
    }
    Ok(true)
}

fn main() -> ExitCode {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: no other thread exists yet. Vulkan's loader warns without this variable.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    // The egresses' displays admit only holders of the web root's cookie (`xauth`); the
    // capture in this process reads it through XAUTHORITY.
    let xauthority = tessera::source::web::xauthority();
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("XAUTHORITY", xauthority) };
    let cli = Cli::parse();
    // The worker's configuration first: its `logging` sets the level and format.
    let mut logging = tessera::config::Logging::default();
    let serve_config = match &cli.command {
        Command::Serve(args) => match serve_config(args) {
            Ok(c) => {
                logging = c.logging.clone();
                if let Some(gpu) = &c.tessera.gpu {
                    // SAFETY: no other thread exists yet (logging, GStreamer and the
                    // runtime start below).
                    unsafe { std::env::set_var("TESSERA_GPU", gpu) };
                }
                Some(c)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    let level = if logging.level.is_empty() {
        "info".to_owned()
    } else {
        logging.level.clone()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // chromiumoxide warns of every DevTools event newer than its protocol tables
        // (Chromium adds them each release); they are harmless.
        format!("{level},wgpu_core=warn,wgpu_hal=warn,naga=warn,chromiumoxide=error").into()
    });
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()) && !logging.json)
        .with_env_filter(filter);
    if logging.json {
        builder.json().init();
    } else {
        builder.init();
    }
    let result = match cli.command {
        Command::Serve(_) => serve(serve_config.expect("read above")),
        Command::Run(args) => run(args),
        Command::Bench(args) => bench(args),
        Command::Probe => probe(),
        Command::Layout(c) => cli::layout_tools::run(c),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
