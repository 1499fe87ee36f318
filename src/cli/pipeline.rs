//! Pipeline commands: `repro`, `stage add`, `dag`, `params diff`, `metrics show|diff`,
//! `plots show|diff`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use dvt::ops;
use dvt::ops::repro::Action;
use dvt::repo::Repo;

use super::json;
use super::progress::Bars;

/// How `repro` and `exp run` pick stages beyond the ones named, and go on
/// when one fails ([`ops::repro::StageFlags`]).
#[derive(Debug, clap::Args)]
pub(super) struct StageFlagArgs {
    /// Reproduce the given stages and everything downstream of them.
    #[arg(long, conflicts_with = "single_item")]
    downstream: bool,
    /// Reproduce only the given stages, not those they depend on (their deps
    /// are taken as they are).
    #[arg(short, long)]
    single_item: bool,
    /// Every stage of the pipelines the given stages are in (connected by deps, either way).
    #[arg(short = 'p', long)]
    pipeline: bool,
    /// Every stage of every pipeline (as no STAGE; DVC's flag).
    #[arg(short = 'P', long, conflicts_with_all = ["stages", "pipeline"])]
    all_pipelines: bool,
    /// Run a stage when one it depends on ran, even if its deps came out as before.
    #[arg(long)]
    force_downstream: bool,
    /// Missing data alone does not make a stage run: outs neither here nor in the
    /// cache, and deps gone from the workspace, count as recorded (with
    /// `--dry-run`: is the pipeline up to date, in a clone without its data?).
    #[arg(long)]
    allow_missing: bool,
    /// When a stage fails, go on with the stages that do not depend on it (as DVC's).
    #[arg(short = 'k', long, conflicts_with = "ignore_errors")]
    keep_going: bool,
    /// When a stage fails, go on with every later stage, on whatever its outs are (as DVC's).
    #[arg(long)]
    ignore_errors: bool,
}

impl StageFlagArgs {
    /// The flags as the library takes them.
    pub(super) fn flags(&self) -> ops::repro::StageFlags {
        ops::repro::StageFlags {
            downstream: self.downstream,
            single_item: self.single_item,
            whole_pipeline: self.pipeline,
            force_downstream: self.force_downstream,
            allow_missing: self.allow_missing,
            keep_going: self.keep_going,
            ignore_errors: self.ignore_errors,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum PipelineCommand {
    /// Run the pipeline's stages whose command, deps, params or outs changed.
    Repro {
        /// Stages to reproduce, with everything upstream of them (default: all).
        stages: Vec<String>,
        /// Run the selected stages even if nothing changed.
        #[arg(short, long)]
        force: bool,
        /// Only say what would run.
        #[arg(long, visible_alias = "dry")]
        dry_run: bool,
        #[command(flatten)]
        flags: StageFlagArgs,
        /// First download the stages' recorded outs from the default remote, so
        /// that they are restored instead of run (as `dvc repro --pull`).
        #[arg(long, conflicts_with = "dry_run")]
        pull: bool,
        /// With `--pull`: download from this remote instead of the default one.
        #[arg(short, long, requires = "pull")]
        remote: Option<String>,
        /// Record outs in `dvt.lock` without storing them in the cache; `dvt
        /// commit` stores them once you keep the result.
        #[arg(long)]
        no_commit: bool,
        /// The STAGEs are shell-style patterns of stage names (`'train-*'`), as DVC's.
        #[arg(long)]
        glob: bool,
        /// Run stages even when the run cache holds an earlier run with the same
        /// command, deps and params (whose outs would be restored instead).
        #[arg(long)]
        no_run_cache: bool,
        /// The targets are directories: the stages that run in each or below it
        /// (their `wdir`), as DVC's `-R` reads the `dvc.yaml` files there.
        #[arg(short = 'R', long, requires = "stages")]
        recursive: bool,
        /// Ask before each stage that is to run (as DVC's); answering no stops
        /// there, the stages before it recorded. Reads the answers from stdin.
        #[arg(short, long, conflicts_with = "dry_run")]
        interactive: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record outs of stages that changed in `dvt.lock` and the cache, and data of
    /// `.dvt` pointers that changed (as `dvc commit`)
    Commit {
        /// Stages (`NAME` or `dvt.toml:NAME`), outs of stages, or tracked data
        /// paths (default: every stage and every pointer).
        targets: Vec<String>,
        /// Also record a stage whose command, deps or params changed since
        /// `dvt.lock` was written, or that never ran.
        #[arg(short, long)]
        force: bool,
        /// A directory target stands for all the data tracked below it (as DVC's `-R`).
        #[arg(short = 'R', long)]
        recursive: bool,
        /// A stage target, or an out of one, also stands for the stages upstream of
        /// it (as DVC's `-d`).
        #[arg(short = 'd', long)]
        with_deps: bool,
        /// Accepted for DVC scripts: dvt's workspace files are copies, never links to relink.
        #[arg(long)]
        no_relink: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Freeze stages (as `dvc freeze`): `dvt repro` and `dvt status` no longer
    /// check their deps and params, nor select the stages upstream of them
    Freeze {
        /// Stages (`NAME` or `dvt.toml:NAME`).
        #[arg(required = true)]
        stages: Vec<String>,
    },
    /// Unfreeze stages frozen by `dvt freeze` (as `dvc unfreeze`)
    Unfreeze {
        /// Stages (`NAME` or `dvt.toml:NAME`).
        #[arg(required = true)]
        stages: Vec<String>,
    },
    /// Edit the stages of `dvt.toml`.
    Stage {
        #[command(subcommand)]
        command: StageCommand,
    },
    /// Show the pipeline's stages and how they depend on each other.
    Dag {
        /// Draw these stages and the stages upstream of them (`NAME`,
        /// `dvt.toml:NAME`); none: every stage.
        targets: Vec<String>,
        /// With targets: the whole pipeline each is in, downstream stages too
        /// (as DVC's).
        #[arg(long)]
        full: bool,
        /// Draw outs instead of stages: `a -> b` when the stage writing `b`
        /// depends on `a` (as DVC's).
        #[arg(short, long)]
        outs: bool,
        /// As a Mermaid flowchart.
        #[arg(long, conflicts_with_all = ["dot", "md"])]
        mermaid: bool,
        /// As Graphviz dot.
        #[arg(long, conflicts_with = "md")]
        dot: bool,
        /// As a Mermaid flowchart in a Markdown code block (for a README or a
        /// pull request; as DVC's).
        #[arg(long)]
        md: bool,
        /// Draw the cases of a `foreach` or `matrix` stage as one node, its name
        /// (as DVC's).
        #[arg(long, conflicts_with = "outs")]
        collapse_foreach_matrix: bool,
    },
    /// Compare params between revisions.
    Params {
        #[command(subcommand)]
        command: ParamsCommand,
    },
    /// Show or compare metrics.
    Metrics {
        #[command(subcommand)]
        command: MetricsCommand,
    },
    /// Experiments (as `dvc exp`): run the pipeline with changed params and keep
    /// each result as a commit under `refs/exps/`, then compare, apply or branch them
    #[command(alias = "experiments")]
    Exp {
        #[command(subcommand)]
        command: super::exp::ExpCommand,
    },
    /// Run experiments queued by `dvt exp run --queue` (as `dvc queue`)
    Queue {
        #[command(subcommand)]
        command: super::exp::QueueCommand,
    },
    /// Draw plots files (CSV, TSV, JSON, YAML) as charts (lines, dots, confusion matrices, bars) in one HTML page,
    /// or compare them between revisions (as `dvc plots`)
    Plots {
        #[command(subcommand)]
        command: PlotsCommand,
    },
}

/// What `repro` (or a dry `exp run`) did with each stage, a line each.
pub(super) fn print_stage_results(report: &ops::ReproReport, quiet: bool) -> Result<ExitCode, dvt::Error> {
    for s in &report.stages {
        match s.action {
            // With -q a run prints only errors; a dry run's answer is what was asked for.
            Action::Skipped if s.frozen => say!(quiet, "Stage `{}` is frozen, skipping", s.stage),
            Action::Skipped => match s.reason.as_deref() {
                Some(why) => say!(quiet, "Stage `{}` didn't change, skipping; {why}", s.stage),
                None => say!(quiet, "Stage `{}` didn't change, skipping", s.stage),
            },
            Action::Restored => say!(quiet, "Stage `{}`: outs restored from the cache", s.stage),
            // A stage with no dvt.lock entry ("it has never run") matched an
            // earlier run as a whole; otherwise what changed went back.
            Action::RestoredFromRunCache => match s.reason.as_deref() {
                Some(why) if why != ops::repro::NEVER_RAN => say!(
                    quiet,
                    "Stage `{}`: {why}, to what an earlier run had; that run's outs restored from the run cache, not run",
                    s.stage
                ),
                _ => say!(
                    quiet,
                    "Stage `{}`: an earlier run had the same command, deps and params; its outs restored from the run cache, not run",
                    s.stage
                ),
            },
            Action::Ran => say!(quiet, "Stage `{}` ran; dvt.lock updated", s.stage),
            Action::WouldRun => out!("Stage `{}` would run: {}", s.stage, s.reason.as_deref().unwrap_or("")),
            Action::WouldRestore => out!("Stage `{}` would restore its outs from the cache", s.stage),
            Action::Failed => note!(false, "error: {}", s.reason.as_deref().unwrap_or("failed")),
            Action::NotRun => note!(
                quiet,
                "Stage `{}` not run: {}",
                s.stage,
                s.reason.as_deref().unwrap_or("")
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `repro -i`: asks on stderr whether to run `stage`, reading the answer from
/// stdin (a terminal or not: the user asked to be asked); end of input is no.
pub(super) fn confirm_stage(stage: &dvt::pipeline::Stage, why: &str) -> Result<bool, dvt::Error> {
    eprint!(
        "{}",
        super::visible(&format!(
            "Going to run stage `{}` ({why}):\n> {}\nContinue? [y/N] ",
            stage.name, stage.cmd
        ))
    );
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Where `dvt plots` writes by default, in the current directory.
const PLOTS_DIR: &str = "dvt_plots";

/// Where `dvt plots` writes, and how it draws.
#[derive(Debug, clap::Args)]
pub(super) struct PlotsOutput {
    /// The directory to write `index.html` into.
    #[arg(short, long = "out", value_name = "DIR", default_value = PLOTS_DIR)]
    out: std::path::PathBuf,
    /// Print the data as JSON instead of writing a page.
    #[arg(long)]
    json: bool,
    /// Open the page in the desktop's browser (`xdg-open`, or `open` on macOS).
    #[arg(long, conflicts_with = "json")]
    open: bool,
    /// An HTML file to write the charts into, where it says `{plot_divs}` (as DVC's).
    #[arg(long, value_name = "FILE", conflicts_with = "json")]
    html_template: Option<std::path::PathBuf>,
    /// Print each chart as a Vega-Lite specification, data inline, instead of
    /// writing a page (as DVC's): one object for one chart, else a list.
    #[arg(long, conflicts_with_all = ["json", "open", "html_template"])]
    show_vega: bool,
    #[command(flatten)]
    axes: AxesArgs,
}

/// Opens `page` with the desktop's opener; a machine without one (a server, CI)
/// gets a note, not an error: the page is written either way.
fn open_page(page: &Path, quiet: bool) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let started = dvt::process::spawn(
        std::process::Command::new(opener)
            .arg(page)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    if let Err(e) = started {
        note!(
            quiet,
            "note: could not open it with `{opener}` ({e}); open the file above in a browser"
        );
    }
}

/// How to draw, overriding what `plots` of `dvt.toml` says (as DVC's `-x`, `-y`, `--title`).
#[derive(Debug, clap::Args)]
pub(super) struct AxesArgs {
    /// The field across.
    #[arg(short = 'x', value_name = "FIELD")]
    x: Option<String>,
    /// A field up (repeatable).
    #[arg(short = 'y', value_name = "FIELD")]
    y: Vec<String>,
    /// The title of each chart.
    #[arg(long)]
    title: Option<String>,
    /// The label across (default: the field's name).
    #[arg(long, value_name = "TEXT")]
    x_label: Option<String>,
    /// The label up.
    #[arg(long, value_name = "TEXT")]
    y_label: Option<String>,
    /// How to draw: linear (lines; also simple, smooth), scatter, confusion,
    /// confusion_normalized, bar_horizontal, bar_horizontal_sorted.
    #[arg(short = 't', long, value_name = "TEMPLATE", value_parser = parse_template)]
    template: Option<dvt::pipeline::PlotTemplate>,
    /// The CSV or TSV files have no header row: their fields are `0`, `1`, ...
    /// (as DVC's; `header = false` in `dvt.toml`).
    #[arg(long)]
    no_header: bool,
}

impl AxesArgs {
    /// The flags as the library takes them.
    fn plot_axes(&self) -> dvt::pipeline::PlotAxes {
        dvt::pipeline::PlotAxes {
            x: self.x.clone(),
            y: self.y.clone(),
            title: self.title.clone(),
            x_label: self.x_label.clone(),
            y_label: self.y_label.clone(),
            template: self.template,
            files: Vec::new(),
            no_header: self.no_header,
        }
    }
}

fn parse_template(name: &str) -> Result<dvt::pipeline::PlotTemplate, String> {
    dvt::pipeline::PlotTemplate::from_name(name)
        .ok_or_else(|| format!("unknown template (known: {})", dvt::pipeline::PlotTemplate::expected()))
}

#[derive(Debug, Subcommand)]
pub(super) enum PlotsCommand {
    /// Draw plots files of the workspace (default: every `plots` entry of `dvt.toml`).
    Show {
        /// Plots files.
        targets: Vec<std::path::PathBuf>,
        #[command(flatten)]
        output: PlotsOutput,
    },
    /// Draw plots files at revisions on the same charts: HEAD and the workspace
    /// by default, REV and the workspace for one revision, else the revisions given.
    Diff {
        /// Revisions (commits, branches, tags) or experiments.
        revisions: Vec<String>,
        /// Plots files (default: every `plots` entry of `dvt.toml`).
        #[arg(long, num_args = 1..)]
        targets: Vec<std::path::PathBuf>,
        #[command(flatten)]
        output: PlotsOutput,
    },
    /// Set how a plots file is drawn (as `dvc plots modify`): its entries in
    /// the `plots` of `dvt.toml` (a stage's, or the top level) get the
    /// properties given.
    Modify {
        /// The plots file (or the name of a top-level plot of several files).
        target: std::path::PathBuf,
        #[command(flatten)]
        axes: AxesArgs,
        /// Remove properties, so that their defaults apply again: template, x,
        /// y, title, x_label, y_label, header.
        #[arg(long, value_name = "PROPERTY", num_args = 1..)]
        unset: Vec<String>,
    },
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub(super) enum StageCommand {
    /// List the stages in run order, with their outs, metrics and plots (as `dvc stage list`).
    List {
        /// Stages (`NAME`, `dvt.toml:NAME`, `dvt.toml`) or pointers (`data.dvt`,
        /// or the data's path) to list; none: every stage of `dvt.toml`.
        targets: Vec<String>,
        /// Every stage and every pointer of the repository (as DVC's, which
        /// lists `.dvc` files so).
        #[arg(long)]
        all: bool,
        /// Exit 1 if there is nothing to list (as DVC's).
        #[arg(long)]
        fail: bool,
        /// Print every field of each stage as JSON.
        #[arg(long)]
        json: bool,
        /// Print the stages' names only (as DVC's).
        #[arg(long, visible_alias = "names-only", conflicts_with = "json")]
        name_only: bool,
        /// The targets are directories: the stages that run in each or below it
        /// (their `wdir`), as DVC's `-R` reads the `dvc.yaml` files there.
        #[arg(short = 'R', long, requires = "targets", conflicts_with = "all")]
        recursive: bool,
    },
    /// Add a stage to `dvt.toml` (as `dvc stage add`).
    Add {
        /// The stage's name.
        #[arg(short, long)]
        name: String,
        /// A dependency (repeatable).
        #[arg(short, long = "deps", value_name = "DEP")]
        deps: Vec<String>,
        /// An output, cached (repeatable).
        #[arg(short, long = "outs", value_name = "OUT")]
        outs: Vec<String>,
        /// An output, not cached (repeatable).
        #[arg(short = 'O', long = "outs-no-cache", value_name = "OUT")]
        outs_no_cache: Vec<String>,
        /// An output, cached, kept rather than deleted before the stage runs (repeatable).
        #[arg(long = "outs-persist", value_name = "OUT")]
        outs_persist: Vec<String>,
        /// An output, not cached, kept before the stage runs (repeatable).
        #[arg(long = "outs-persist-no-cache", value_name = "OUT")]
        outs_persist_no_cache: Vec<String>,
        /// Params: `[FILE:]KEY[,KEY]`, FILE defaulting to params.yaml (repeatable).
        #[arg(short, long = "params", value_name = "[FILE:]KEY")]
        params: Vec<String>,
        /// A metrics file, not cached (repeatable; `-M/--metrics-no-cache`, DVC's
        /// flag for that, is the same).
        #[arg(
            short,
            long = "metrics",
            value_name = "FILE",
            short_alias = 'M',
            alias = "metrics-no-cache"
        )]
        metrics: Vec<String>,
        /// A plots file for `dvt plots`, not cached (repeatable; also `--plots-no-cache`).
        #[arg(long = "plots", value_name = "FILE", alias = "plots-no-cache")]
        plots: Vec<String>,
        /// The directory the command runs in.
        #[arg(short, long)]
        wdir: Option<String>,
        /// What the stage is for (shown by `dvt stage list`).
        #[arg(long)]
        desc: Option<String>,
        /// Run the stage on every `dvt repro`, e.g. when it reads from outside
        /// the repository.
        #[arg(long)]
        always_changed: bool,
        /// Replace a stage of the same name.
        #[arg(short, long)]
        force: bool,
        /// Run the stage once added (as `dvt repro --single-item NAME`).
        #[arg(long)]
        run: bool,
        /// The command.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum ValuesCommand {
    /// Values that differ between A (default HEAD) and B (default: the workspace).
    Diff(ValuesDiffArgs),
}

#[derive(Debug, Subcommand)]
pub(super) enum ParamsCommand {
    /// Every param of `params.yaml` and the pipeline's params files, in the
    /// workspace or at a revision (what `dvc.api.params_show` returns).
    Show {
        /// Only these files (any file, named in the pipeline or not).
        targets: Vec<std::path::PathBuf>,
        /// Read them at this git revision (tag, branch, commit, experiment).
        #[arg(long)]
        rev: Option<String>,
        /// Only the params some stage lists (as DVC's `--deps`).
        #[arg(long)]
        deps: bool,
        /// Only the params this stage lists (repeatable; `dvc.api.params_show(stages=...)`).
        #[arg(long = "stage", value_name = "STAGE")]
        stages: Vec<String>,
        /// Print as JSON: files, then their values nested as in the files.
        #[arg(long)]
        json: bool,
    },
    /// Values that differ between A (default HEAD) and B (default: the workspace).
    Diff(ParamsDiffArgs),
}

/// What `params diff` takes.
#[derive(Debug, Args)]
pub(super) struct ParamsDiffArgs {
    #[command(flatten)]
    values: ValuesDiffArgs,
    /// Only the params some stage lists, not every key of the params files (as DVC's).
    #[arg(long)]
    deps: bool,
}

/// What `params diff` and `metrics diff` take.
#[derive(Debug, Args)]
pub(super) struct ValuesDiffArgs {
    /// The old revision.
    a: Option<String>,
    /// The new revision.
    b: Option<String>,
    /// Only these files (any file, named in the pipeline or not).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    targets: Vec<std::path::PathBuf>,
    /// Also the values that did not change.
    #[arg(short, long)]
    all: bool,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
    /// Print as a Markdown table (for a pull request or a report).
    #[arg(long, conflicts_with = "json")]
    md: bool,
    #[command(flatten)]
    shown: ShownArgs,
}

impl ValuesDiffArgs {
    /// The files and the `--all` of these arguments, for `params_diff`/`metrics_diff`.
    fn options(&self, repo: &Repo, cwd: &Path) -> Result<ops::stages::ValuesOptions, dvt::Error> {
        Ok(ops::stages::ValuesOptions {
            targets: repo_files(repo, cwd, &self.targets)?,
            all: self.all,
            deps_only: false,
        })
    }
}

/// How a table of value changes is printed (not `--json`).
#[derive(Debug, Args, Clone, Copy)]
pub(super) struct ShownArgs {
    /// Leave out the file column (as DVC's).
    #[arg(long)]
    no_path: bool,
    /// Round numbers to N significant digits (default: as the files hold them).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=17))]
    precision: Option<u32>,
}

impl ShownArgs {
    /// `v` as a table shows it.
    fn show(&self, v: &Option<toml::Value>) -> String {
        v.as_ref().map_or("—".into(), |v| {
            super::exp::value_text(v, self.precision.map(|p| p as usize))
        })
    }
}

/// Repo-relative paths of files named on the command line.
fn repo_files(repo: &Repo, cwd: &Path, files: &[std::path::PathBuf]) -> Result<Vec<String>, dvt::Error> {
    files.iter().map(|t| Ok(repo.resolve(cwd, t)?.1)).collect()
}

/// Stages that `dvt.lock` stopped recording (deleted from `dvt.toml`, or a
/// `foreach` case taken out), and their outs that stay in the workspace: a
/// later stage reading their directory would read them still.
pub(super) fn forgotten_note(forgotten: &[dvt::pipeline::lock::Forgotten], quiet: bool) {
    for f in forgotten {
        match f.outs.as_slice() {
            [] => note!(
                quiet,
                "note: stage `{}` is no longer in dvt.toml, so dvt.lock forgets it",
                f.stage
            ),
            outs => note!(
                quiet,
                "note: stage `{}` is no longer in dvt.toml, so dvt.lock forgets it; its outs stay in the workspace: {} \
                 (delete them if nothing reads them, or `dvt add` them to keep them as data)",
                f.stage,
                outs.join(", ")
            ),
        }
    }
}

/// What `--pull` downloaded before a repro, or why it could not.
pub(super) fn pull_note(report: &ops::ReproReport, pull: bool, quiet: bool) {
    if let Some(e) = &report.pull_error {
        note!(
            quiet,
            "dvt: warning: not every out could be downloaded, so their stages ran: {e}"
        );
    } else if pull {
        note!(quiet, "downloaded {}", dvt::counted(report.pulled, "object"));
    }
}

#[derive(Debug, Subcommand)]
pub(super) enum MetricsCommand {
    /// Every metric in the workspace.
    Show {
        /// Only these files (any file, named in the pipeline or not).
        targets: Vec<std::path::PathBuf>,
        // -a/-T/-A: a table, a row per revision and file.
        #[command(flatten)]
        across: super::AcrossArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Print as a Markdown table (for a pull request or a report).
        #[arg(long, conflicts_with = "json")]
        md: bool,
        /// Round numbers to N significant digits (default: as the files hold them).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=30))]
        precision: Option<u32>,
        /// A target that is a directory stands for the metrics files below it
        /// (`.json`, `.yaml`, `.yml`, `.toml`; as DVC's).
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Metrics that differ between A (default HEAD) and B (default: the workspace).
    Diff {
        #[command(flatten)]
        values: ValuesDiffArgs,
        /// A target that is a directory, at either revision, stands for the
        /// metrics files below it (`.json`, `.yaml`, `.yml`, `.toml`; as DVC's).
        #[arg(short = 'R', long)]
        recursive: bool,
    },
}

/// `metrics show -a/-T/-A`: a row per revision and file, a column per key.
fn print_metrics_across(
    revs: &[(String, ops::stages::FileValues)],
    as_json: bool,
    md: bool,
    precision: Option<u32>,
) -> Result<ExitCode, dvt::Error> {
    let show = |v: &Option<toml::Value>| show_rounded(v, precision);
    if as_json {
        let mut all = serde_json::Map::new();
        for (label, files) in revs {
            all.insert(
                label.clone(),
                serde_json::to_value(files).map_err(|e| std::io::Error::other(e.to_string()))?,
            );
        }
        return json(&all);
    }
    let keys: std::collections::BTreeSet<&String> = revs
        .iter()
        .flat_map(|(_, f)| f.values().flat_map(|v| v.keys()))
        .collect();
    let mut table: Vec<Vec<String>> = vec![
        std::iter::once("Revision".to_string())
            .chain(std::iter::once("Path".to_string()))
            .chain(keys.iter().map(|k| k.to_string()))
            .collect(),
    ];
    for (label, files) in revs {
        for (file, values) in files {
            let mut row = vec![label.clone(), file.clone()];
            row.extend(keys.iter().map(|k| show(&values.get(*k).cloned())));
            table.push(row);
        }
    }
    print_grid(&table, 2, md)
}

/// Prints `table` (its first row the header) as aligned columns, or as Markdown: the
/// first `left` columns to the left, the rest (numbers) to the right.
fn print_grid(table: &[Vec<String>], left: usize, md: bool) -> Result<ExitCode, dvt::Error> {
    if md {
        for (i, row) in table.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| md_cell(c)).collect();
            out!("| {} |", cells.join(" | "));
            if i == 0 {
                let rule: Vec<&str> = (0..row.len()).map(|j| if j < left { "---" } else { "---:" }).collect();
                out!("| {} |", rule.join(" | "));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let widths: Vec<usize> = (0..table.first().map_or(0, Vec::len))
        .map(|j| table.iter().map(|r| r[j].chars().count()).max().unwrap_or(0))
        .collect();
    for row in table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(j, (c, w))| match j < left {
                true => format!("{c:<w$}"),
                false => format!("{c:>w$}"),
            })
            .collect();
        out!("{}", cells.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// A value as tables show it, numbers rounded to `precision` significant digits.
fn show_rounded(v: &Option<toml::Value>, precision: Option<u32>) -> String {
    v.as_ref().map_or("—".into(), |v| {
        super::exp::value_text(v, precision.map(|p| p as usize))
    })
}

/// A Markdown table cell: no line breaks, `|` escaped.
pub(super) fn md_cell(s: &str) -> String {
    s.trim().replace('\n', " ").replace('|', "\\|")
}

/// What `params diff`, `metrics diff` and `exp diff` print, as DVC's tables: the file,
/// the key, the value at each side (headed by the revisions, `revs`) and, for metrics,
/// the change.
/// What a table of [`print_changes`] compares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Compared {
    Params,
    Metrics,
}

pub(super) fn print_changes(
    changes: &[ops::stages::ValueChange],
    as_json: bool,
    md: bool,
    shown: ShownArgs,
    what: Compared,
    revs: (Option<&str>, Option<&str>),
) -> Result<ExitCode, dvt::Error> {
    if as_json {
        return json(&changes);
    }
    let metrics = what == Compared::Metrics;
    if changes.is_empty() {
        out!("No {} changed.", if metrics { "metrics" } else { "params" });
        return Ok(ExitCode::SUCCESS);
    }
    let mut header = vec![
        "Path".to_string(),
        if metrics { "Metric" } else { "Param" }.to_string(),
        revs.0.unwrap_or("HEAD").to_string(),
        revs.1.unwrap_or("workspace").to_string(),
    ];
    if metrics {
        header.push("Change".into());
    }
    let mut table = vec![header];
    for c in changes {
        let mut row = vec![c.file.clone(), c.key.clone(), shown.show(&c.old), shown.show(&c.new)];
        if metrics {
            row.push(shown.show(&c.diff));
        }
        table.push(row);
    }
    if shown.no_path {
        for row in &mut table {
            row.remove(0);
        }
    }
    print_grid(&table, if shown.no_path { 1 } else { 2 }, md)
}

pub(super) fn run(cwd: &Path, command: &PipelineCommand, quiet: bool, bars: &Bars) -> Result<ExitCode, dvt::Error> {
    let repo = Repo::open(cwd)?;
    match command {
        PipelineCommand::Repro {
            stages,
            force,
            dry_run,
            flags,
            pull,
            remote,
            no_commit,
            glob,
            no_run_cache,
            interactive,
            recursive,
            json: as_json,
        } => {
            let stages = match recursive {
                true => &ops::stages::stages_below(&repo, cwd, stages)?,
                false => stages,
            };
            let opts = flags.flags().apply(ops::ReproOptions {
                glob: *glob,
                targets: stages.clone(),
                force: *force,
                dry_run: *dry_run,
                pull: *pull,
                remote: remote.clone(),
                no_commit: *no_commit,
                no_run_cache: *no_run_cache,
                ..Default::default()
            });
            let on_run = |stage: &dvt::pipeline::Stage, why: &str| {
                // The question says what runs: nothing to add after a yes.
                if *interactive {
                    return match confirm_stage(stage, why)? {
                        true => Ok(()),
                        false => Err(dvt::error::PipelineError::Declined {
                            stage: stage.name.clone(),
                        }
                        .into()),
                    };
                }
                note!(quiet, "Running stage `{}` ({why}):\n> {}", stage.name, stage.cmd);
                Ok(())
            };
            let report = ops::repro(&repo, &opts, &on_run, bars)?;
            let failed = report.stages.iter().filter(|s| s.action == Action::Failed).count();
            if *as_json {
                json(&report)?;
                return Ok(ExitCode::from(u8::from(failed > 0)));
            }
            pull_note(&report, *pull, quiet);
            print_stage_results(&report, quiet)?;
            forgotten_note(&report.forgotten, quiet);
            if *no_commit && report.stages.iter().any(|s| s.action == Action::Ran) {
                note!(
                    quiet,
                    "hint: the outs are not in the cache; `dvt commit` stores them when you keep this result"
                );
            }
            // What the runs (and restores) wrote for git: dvt.lock, .gitignore files.
            super::git_add_hint(quiet, &repo, cwd, "to record the results with git");
            if failed > 0 {
                let not_run = report.stages.iter().filter(|s| s.action == Action::NotRun).count();
                note!(
                    false,
                    "error: {} failed{}; the others ran as they should",
                    dvt::counted(failed, "stage"),
                    match not_run {
                        0 => String::new(),
                        n => format!(", {} not run because of them", dvt::counted(n, "stage")),
                    }
                );
                return Ok(ExitCode::from(1));
            }
        }
        PipelineCommand::Commit {
            targets,
            force,
            recursive,
            with_deps,
            json: as_json,
            ..
        } => {
            let targets = super::expand_targets(
                &repo,
                cwd,
                targets.iter().map(std::path::PathBuf::from).collect(),
                *recursive,
                *with_deps,
            )?;
            let opts = ops::CommitOptions {
                targets: targets.iter().map(|t| t.to_string_lossy().into_owned()).collect(),
                cwd: cwd.to_path_buf(),
                force: *force,
                skip_incomplete: false,
            };
            let report = ops::commit(&repo, &opts, bars)?;
            if *as_json {
                return json(&report);
            }
            for s in &report.stages {
                let stored = match s.stored_bytes {
                    0 => String::new(),
                    n => format!("; {} written to the cache", indicatif::HumanBytes(n)),
                };
                match (&s.forced, s.changed) {
                    (Some(why), _) => out!("Stage `{}` committed as it is ({why}){stored}", s.stage),
                    (None, true) => out!("Stage `{}` committed; dvt.lock updated{stored}", s.stage),
                    (None, false) => out!("Stage `{}` didn't change{stored}", s.stage),
                }
            }
            for s in &report.never_ran {
                note!(
                    quiet,
                    "skipped stage `{s}`: it has never run (`dvt repro {s}` runs it; `dvt commit --force {s}` \
                     records its outs as they are)"
                );
            }
            for p in &report.skipped_imports {
                note!(quiet, "skipped {p}: imports change with `dvt update`");
            }
            forgotten_note(&report.forgotten, quiet);
            if let Some(added) = &report.pointers {
                super::print_added(quiet, added, false)?;
            } else if report.stages.is_empty() {
                say!(quiet, "Nothing to commit.");
            }
            // One hint names dvt.lock and the pointers together.
            super::git_add_hint(quiet, &repo, cwd, "to record it with git");
        }
        PipelineCommand::Stage {
            command:
                StageCommand::Add {
                    name,
                    deps,
                    outs,
                    outs_no_cache,
                    outs_persist,
                    outs_persist_no_cache,
                    params,
                    metrics,
                    plots,
                    wdir,
                    desc,
                    always_changed,
                    force,
                    run,
                    cmd,
                },
        } => {
            // The command starts at the first word that is not an option, so a
            // mistyped option would silently become the start of the command.
            if let Some(first) = cmd.first().filter(|w| w.starts_with('-')) {
                clap::Error::raw(
                    clap::error::ErrorKind::UnknownArgument,
                    format!("`{first}` is not an option of `dvt stage add` (see --help), and a command cannot start with `-`\n"),
                )
                .exit();
            }
            ops::stages::stage_add(
                &repo,
                &ops::stages::StageAddOptions {
                    name: name.clone(),
                    cmd: cmd.join(" "),
                    deps: deps.clone(),
                    outs: outs.clone(),
                    outs_no_cache: outs_no_cache.clone(),
                    outs_persist: outs_persist.clone(),
                    outs_persist_no_cache: outs_persist_no_cache.clone(),
                    params: params.clone(),
                    metrics: metrics.clone(),
                    plots: plots.clone(),
                    wdir: wdir.clone(),
                    desc: desc.clone(),
                    always_changed: *always_changed,
                    force: *force,
                },
            )?;
            out!("Added stage `{name}` to dvt.toml");
            if !*run {
                super::git_add_hint(quiet, &repo, cwd, "to record it with git");
                note!(quiet, "hint: run it with `dvt repro {name}`");
                return Ok(ExitCode::SUCCESS);
            }
            let opts = ops::ReproOptions {
                targets: vec![name.clone()],
                single_item: true,
                force: true,
                ..Default::default()
            };
            let on_run = |stage: &dvt::pipeline::Stage, _: &str| {
                note!(quiet, "Running stage `{}`:\n> {}", stage.name, stage.cmd);
                Ok(())
            };
            ops::repro(&repo, &opts, &on_run, bars)?;
            say!(quiet, "Ran stage `{name}`; dvt.lock records it");
            super::git_add_hint(quiet, &repo, cwd, "to record it with git");
        }
        PipelineCommand::Freeze { stages } | PipelineCommand::Unfreeze { stages } => {
            let freeze = matches!(command, PipelineCommand::Freeze { .. });
            let changed = ops::stages::set_frozen(&repo, stages, freeze)?;
            let (done, already) = match freeze {
                true => ("Froze", "frozen"),
                false => ("Unfroze", "not frozen"),
            };
            for (name, changed) in changed {
                match changed {
                    true => say!(quiet, "{done} stage `{name}`"),
                    false => say!(quiet, "Stage `{name}` was already {already}"),
                }
            }
        }
        PipelineCommand::Stage {
            command:
                StageCommand::List {
                    targets,
                    all,
                    fail,
                    json: as_json,
                    name_only,
                    recursive,
                },
        } => {
            let targets = match recursive {
                true => &ops::stages::stages_below(&repo, cwd, targets)?,
                false => targets,
            };
            let stages = ops::stages::list(&repo, cwd, targets, *all)?;
            if *fail && stages.is_empty() {
                note!(false, "error: no stages to list");
                return Ok(ExitCode::FAILURE);
            }
            if *as_json {
                return json(&stages);
            }
            if *name_only {
                for s in stages {
                    out!("{}", s.name);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let width = stages.iter().map(|s| s.name.len()).max().unwrap_or(0);
            for s in stages {
                let list = |which: &dyn Fn(&dvt::pipeline::Out) -> bool| {
                    s.outs
                        .iter()
                        .filter(|o| which(o))
                        .map(|o| o.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut parts = Vec::new();
                for (what, paths) in [
                    ("outs", list(&|o| !o.metric && o.plot.is_none())),
                    ("metrics", list(&|o| o.metric)),
                    ("plots", list(&|o| o.plot.is_some())),
                ] {
                    if !paths.is_empty() {
                        parts.push(format!("{what} {paths}"));
                    }
                }
                // As `dvc stage list`: the description, if there is one.
                let mut about = match (&s.desc, parts.is_empty()) {
                    (Some(d), _) => d.clone(),
                    (None, true) => "no outs".to_string(),
                    (None, false) => parts.join("; "),
                };
                for (on, tag) in [(s.frozen, " (frozen)"), (s.always_changed, " (always changed)")] {
                    if on {
                        about.push_str(tag);
                    }
                }
                out!("{:<width$}  {about}", s.name);
            }
        }
        PipelineCommand::Dag {
            targets,
            full,
            outs,
            mermaid,
            dot,
            md,
            collapse_foreach_matrix,
        } => {
            let p = dvt::pipeline::Pipeline::load_required(&repo)?;
            let format = if *mermaid || *md {
                ops::stages::DagFormat::Mermaid
            } else if *dot {
                ops::stages::DagFormat::Dot
            } else {
                ops::stages::DagFormat::Text
            };
            let opts = ops::stages::DagOptions {
                targets: targets.clone(),
                full: *full,
                outs: *outs,
                format,
                collapse: *collapse_foreach_matrix,
            };
            let text = ops::stages::dag(&p, &opts)?;
            match md {
                true => out!("```mermaid\n{}\n```", text.trim_end()),
                false => out!("{}", text.trim_end()),
            }
        }
        PipelineCommand::Params {
            command:
                ParamsCommand::Show {
                    targets,
                    rev,
                    deps,
                    stages,
                    json: as_json,
                },
        } => {
            let files = repo_files(&repo, cwd, targets)?;
            let values = ops::stages::params_show(&repo, rev.as_deref(), &files, *deps, stages)?;
            if *as_json {
                let nested: std::collections::BTreeMap<&String, toml::Value> =
                    values.iter().map(|(f, v)| (f, ops::stages::unflatten(v))).collect();
                return json(&nested);
            }
            for (file, vals) in &values {
                out!("{file}:");
                for (k, v) in vals {
                    out!("    {k}: {}", show_rounded(&Some(v.clone()), None));
                }
            }
        }
        PipelineCommand::Params {
            command: ParamsCommand::Diff(ParamsDiffArgs { values: args, deps }),
        } => {
            let opts = ops::stages::ValuesOptions {
                deps_only: *deps,
                ..args.options(&repo, cwd)?
            };
            let changes = ops::stages::params_diff(&repo, args.a.as_deref(), args.b.as_deref(), &opts)?;
            return print_changes(
                &changes,
                args.json,
                args.md,
                args.shown,
                Compared::Params,
                (args.a.as_deref(), args.b.as_deref()),
            );
        }
        PipelineCommand::Metrics {
            command:
                MetricsCommand::Show {
                    targets,
                    across,
                    json: as_json,
                    md,
                    precision,
                    recursive,
                },
        } => {
            let show = |v: &Option<toml::Value>| show_rounded(v, *precision);
            let across = across.across();
            let mut targets = repo_files(&repo, cwd, targets)?;
            if *recursive {
                // Across revisions too: the directories as the workspace holds them.
                targets = ops::stages::metric_files_below(&repo, &targets, &[None])?;
            }
            if across.any() {
                let revs = ops::stages::metrics_show_across(&repo, &targets, across)?;
                return print_metrics_across(&revs, *as_json, *md, *precision);
            }
            let m = ops::stages::metrics_show(&repo, &targets)?;
            if *as_json {
                return json(&m);
            }
            if *md {
                out!("| file | key | value |");
                out!("| --- | --- | ---: |");
                for (file, vals) in &m {
                    for (k, v) in vals {
                        out!(
                            "| {} | {} | {} |",
                            md_cell(file),
                            md_cell(k),
                            md_cell(&show(&Some(v.clone())))
                        );
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            for (file, vals) in &m {
                out!("{file}:");
                for (k, v) in vals {
                    out!("    {k}: {}", show(&Some(v.clone())));
                }
            }
        }
        PipelineCommand::Metrics {
            command: MetricsCommand::Diff {
                values: args,
                recursive,
            },
        } => {
            let mut opts = args.options(&repo, cwd)?;
            if *recursive {
                let base = ops::stages::base_rev(&repo, args.a.as_deref())?;
                let revs: Vec<Option<&str>> = base.map(Some).into_iter().chain([args.b.as_deref()]).collect();
                opts.targets = ops::stages::metric_files_below(&repo, &opts.targets, &revs)?;
            }
            let changes = ops::stages::metrics_diff(&repo, args.a.as_deref(), args.b.as_deref(), &opts)?;
            return print_changes(
                &changes,
                args.json,
                args.md,
                args.shown,
                Compared::Metrics,
                (args.a.as_deref(), args.b.as_deref()),
            );
        }
        PipelineCommand::Exp { command } => return super::exp::run(&repo, cwd, command, quiet, bars),
        PipelineCommand::Queue { command } => return super::exp::run_queue(&repo, command, quiet, bars),
        PipelineCommand::Plots { command } => {
            let (targets, revs, output) = match command {
                PlotsCommand::Modify { target, axes, unset } => {
                    let target = repo.resolve(cwd, target)?.1;
                    for at in ops::stages::plots_modify(&repo, &target, &axes.plot_axes(), unset)? {
                        match at {
                            Some(stage) => say!(quiet, "modified `{target}` in the plots of stage `{stage}`"),
                            None => say!(quiet, "modified `{target}` in the top-level plots"),
                        }
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                PlotsCommand::Show { targets, output } => (targets, Vec::new(), output),
                PlotsCommand::Diff {
                    revisions,
                    targets,
                    output,
                } => {
                    let mut revs: Vec<Option<String>> = revisions.iter().cloned().map(Some).collect();
                    match revs.len() {
                        0 => {
                            let base = ops::stages::base_rev(&repo, None)?;
                            revs = base.map(|h| Some(h.to_string())).into_iter().chain([None]).collect();
                        }
                        1 => revs.push(None),
                        _ => {}
                    }
                    (targets, revs, output)
                }
            };
            let opts = ops::plots::PlotsOptions {
                targets: repo_files(&repo, cwd, targets)?,
                revs,
                axes: output.axes.plot_axes(),
            };
            let plots = ops::plots::plots(&repo, &opts)?;
            if output.json {
                return json(&plots);
            }
            if output.show_vega {
                let mut specs = Vec::new();
                for p in &plots {
                    match ops::plots::vega_lite(p) {
                        Some(spec) => specs.push(spec),
                        None => note!(quiet, "note: `{}` is an image: Vega-Lite does not draw it", p.path),
                    }
                }
                return match <[serde_json::Value; 1]>::try_from(specs) {
                    Ok([one]) => json(&one),
                    Err(all) => json(&all),
                };
            }
            let html = match &output.html_template {
                None => ops::plots::render_html(&plots),
                Some(file) => {
                    let template = fs_err::read_to_string(cwd.join(file))?;
                    ops::plots::render_in(&template, &plots)
                        .ok_or_else(|| dvt::error::PipelineError::PageTemplate { file: file.clone() })?
                }
            };
            let dir = cwd.join(&output.out);
            // The default directory is made ignored by git (and so by `exp run`/`exp
            // save`) when dvt creates it: the page is drawn from data git already has.
            // Deleting that `.gitignore` is kept to, as is any other directory.
            if output.out.as_os_str() == PLOTS_DIR && !dir.exists() {
                fs_err::create_dir_all(&dir)?;
                dvt::fsutil::atomic_write(
                    &dir.join(".gitignore"),
                    b"# Written by `dvt plots`: the page is drawn from data git already has.\n*\n",
                )?;
            }
            fs_err::create_dir_all(&dir)?;
            let page = dir.join("index.html");
            dvt::fsutil::atomic_write(&page, html.as_bytes())?;
            let page = fs_err::canonicalize(&page)?;
            out!("file://{}", page.display());
            if output.open {
                open_page(&page, quiet);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
