//! `tessera layout check` and `tessera layout preview [--watch]`: the layout author's
//! tools. Check prints `file:line:column: message` diagnostics; preview renders with the
//! real compositor and synthetic participants; watch re-renders on every save.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use tessera::compositor::preview::{PreviewSpec, render_with};
use tessera::compositor::{Backend, BackendChoice, Compositor};
use tessera::layout::{Layout, LayoutError, LayoutLibrary, ResolvedLayout, Severity, load_file};

/// How often watch mode looks at the file.
const POLL: Duration = Duration::from_millis(20);

#[derive(clap::Subcommand)]
pub enum LayoutCommand {
    /// Check layout files: errors and warnings as `file:line:column: message` with a hint.
    /// Exits non-zero if any file has an error.
    Check {
        /// Layout files (`*.toml`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Render a layout with synthetic participants to a PNG, with the real compositor.
    Preview(PreviewArgs),
}

#[derive(clap::Args)]
pub struct PreviewArgs {
    /// A layout file, or a built-in layout's name (`speaker`, `grid-light`, ...).
    layout: String,
    /// Participants in the room.
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Participant 1 shares a screen.
    #[arg(long)]
    screen_share: bool,
    /// The active speaker, 1-based (default: nobody has spoken yet, as at the start).
    #[arg(long)]
    speaker: Option<usize>,
    /// Participants with their camera off, 1-based, comma-separated (e.g. `2,5`).
    #[arg(long, value_delimiter = ',')]
    no_camera: Vec<usize>,
    /// A caption burned in, `K:TEXT` (participant K, 1-based, says TEXT); repeat for more
    /// (oldest first). Drawn in the layout's caption region as a request with
    /// `"captions": {"burn_in": true}` draws it.
    #[arg(long)]
    caption: Vec<String>,
    /// Output size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// Theme for a layout file: dark or light.
    #[arg(long, default_value = "dark")]
    theme: String,
    /// The PNG to write.
    #[arg(long, default_value = "preview.png")]
    out: PathBuf,
    /// Re-render on every save of the file; errors keep the last good preview.
    #[arg(long)]
    watch: bool,
    /// Compositor, as `tessera run --compositor` (auto: the one an egress on this machine
    /// uses, so the preview is what it records).
    #[arg(long, env = "TESSERA_COMPOSITOR", value_enum, default_value_t)]
    compositor: BackendChoice,
}

/// Runs a layout subcommand; `Ok(false)` is a failure exit without an error message.
pub fn run(command: LayoutCommand) -> Result<bool> {
    match command {
        LayoutCommand::Check { files } => Ok(check(&files)),
        LayoutCommand::Preview(args) => preview(args),
    }
}

fn check(files: &[PathBuf]) -> bool {
    let mut ok = true;
    for file in files {
        match load_file(file) {
            Ok((layout, warnings)) => {
                for w in &warnings {
                    println!("{w}");
                }
                println!(
                    "{}: ok ({} rule{}, {} warning{})",
                    file.display(),
                    layout.rules.len(),
                    if layout.rules.len() == 1 { "" } else { "s" },
                    warnings.len(),
                    if warnings.len() == 1 { "" } else { "s" }
                );
            }
            Err(LayoutError::Template(d)) => {
                debug_assert_eq!(d.severity, Severity::Error);
                println!("{d}");
                ok = false;
            }
            Err(e) => {
                println!("{}: error: {e}", file.display());
                ok = false;
            }
        }
    }
    ok
}

fn parse_size(s: &str) -> Result<(u32, u32)> {
    s.split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|&(w, h)| (16..=7680).contains(&w) && (16..=4320).contains(&h))
        .filter(|&(w, h)| w % 2 == 0 && h % 2 == 0)
        .with_context(|| format!("--size: expected WIDTHxHEIGHT, even, 16 to 7680x4320, got {s:?}"))
}

/// The layout to preview: a file (compiled) or a built-in name.
fn resolve(layout: &str, theme: &str) -> Result<(ResolvedLayout, Option<PathBuf>), LayoutError> {
    let path = Path::new(layout);
    if path.extension().is_some_and(|e| e == "toml") || path.exists() {
        let (compiled, warnings) = load_file(path)?;
        for w in warnings {
            eprintln!("{w}");
        }
        return Ok((themed(compiled, layout, theme)?, Some(path.to_owned())));
    }
    let name = if theme == "dark" {
        layout.to_owned()
    } else {
        format!("{layout}-{theme}")
    };
    Ok((LayoutLibrary::builtin().resolve(&name)?, None))
}

fn themed(layout: Layout, file: &str, theme: &str) -> Result<ResolvedLayout, LayoutError> {
    let available = layout.themes.keys().cloned().collect::<Vec<_>>().join(", ");
    ResolvedLayout::with_theme(file, std::sync::Arc::new(layout), theme).ok_or_else(|| {
        LayoutError::Unknown {
            name: format!("{file} with theme {theme}"),
            available,
        }
    })
}

fn preview(args: PreviewArgs) -> Result<bool> {
    let (width, height) = parse_size(&args.size)?;
    if !(1..=64).contains(&args.participants) {
        bail!("--participants: must be 1 to 64, got {}", args.participants);
    }
    if args.theme != "dark" && args.theme != "light" {
        bail!("--theme: dark or light, got {:?}", args.theme);
    }
    let one_based = |flag: &str, k: usize| {
        if (1..=args.participants).contains(&k) {
            Ok(k - 1)
        } else {
            bail!("{flag}: participant {k} is not 1 to {}", args.participants)
        }
    };
    let spec = PreviewSpec {
        participants: args.participants,
        screen_share: args.screen_share,
        speaker: args
            .speaker
            .map(|k| one_based("--speaker", k))
            .transpose()?,
        no_camera: args
            .no_camera
            .iter()
            .map(|&k| one_based("--no-camera", k))
            .collect::<Result<_>>()?,
        width,
        height,
        captions: args
            .caption
            .iter()
            .map(|c| {
                let (k, text) = c
                    .split_once(':')
                    .with_context(|| format!("--caption: expected K:TEXT, got {c:?}"))?;
                let k = k
                    .trim()
                    .parse()
                    .with_context(|| format!("--caption: {k:?} is not a participant number"))?;
                Ok((one_based("--caption", k)?, text.trim().to_owned()))
            })
            .collect::<Result<_>>()?,
    };
    let mut compositor = Backend::open(args.compositor)?.compositor(width, height)?;
    let render = |compositor: &mut Compositor, layout: &ResolvedLayout| -> Result<()> {
        let image = render_with(compositor, layout, &spec)?;
        image
            .write_png(&args.out)
            .with_context(|| format!("writing {}", args.out.display()))
    };
    let (layout, file) = match resolve(&args.layout, &args.theme) {
        Ok(l) => l,
        Err(e) if !args.watch => bail!("{e}"),
        Err(e) => {
            // Watching a file that is broken from the start: wait for a good save.
            eprintln!("{e}");
            return watch(
                Path::new(&args.layout),
                &mut |layout| render(&mut compositor, layout),
                &args.theme,
            );
        }
    };
    let started = Instant::now();
    render(&mut compositor, &layout)?;
    eprintln!(
        "preview: wrote {} in {} ms",
        args.out.display(),
        started.elapsed().as_millis()
    );
    match (args.watch, file) {
        (false, _) => Ok(true),
        (true, None) => bail!("--watch needs a layout file, not a built-in name"),
        (true, Some(file)) => watch(
            &file,
            &mut |layout| render(&mut compositor, layout),
            &args.theme,
        ),
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-renders on every change of `file` until interrupted. Each render prints how long
/// after the save the PNG was complete; a broken file prints its error and the last good
/// preview stays.
fn watch(
    file: &Path,
    render: &mut dyn FnMut(&ResolvedLayout) -> Result<()>,
    theme: &str,
) -> Result<bool> {
    eprintln!("preview: watching {} (Ctrl-C to stop)", file.display());
    let mut seen = modified(file);
    loop {
        std::thread::sleep(POLL);
        let now = modified(file);
        if now == seen {
            continue;
        }
        seen = now;
        let result = load_file(file).and_then(|(layout, warnings)| {
            for w in warnings {
                eprintln!("{w}");
            }
            themed(layout, &file.display().to_string(), theme)
        });
        match result {
            Ok(layout) => match render(&layout) {
                Ok(()) => {
                    let after_save = now
                        .and_then(|m| SystemTime::now().duration_since(m).ok())
                        .unwrap_or_default();
                    eprintln!(
                        "preview: updated {} ms after the save",
                        after_save.as_millis()
                    );
                }
                Err(e) => eprintln!("preview error: {e:#}"),
            },
            Err(e) => eprintln!("{e}\npreview: kept the last good preview"),
        }
    }
}
