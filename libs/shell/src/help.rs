//! The command table (what `help` prints) and "did you mean" suggestions.

/// One shell command as `help` describes it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CommandInfo {
    /// The word that invokes it.
    pub name: &'static str,
    /// Its synopsis, arguments in angle brackets.
    pub usage: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// How many arguments it takes.
    pub arity: usize,
    /// Other words that invoke it (`help` shows them after the summary).
    pub aliases: &'static [&'static str],
}

impl CommandInfo {
    /// Whether `word` invokes this command: its name or an alias, ASCII case-insensitive.
    pub fn is_invoked_by(&self, word: &str) -> bool {
        self.name.eq_ignore_ascii_case(word)
            || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(word))
    }
}

const fn info(
    name: &'static str,
    usage: &'static str,
    summary: &'static str,
    arity: usize,
) -> CommandInfo {
    CommandInfo {
        name,
        usage,
        summary,
        arity,
        aliases: &[],
    }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: [CommandInfo; 13] = [
    info("help", "help", "list the commands", 0),
    info("vms", "vms", "list the guests and their state", 0),
    info(
        "cpus",
        "cpus",
        "list the CPUs: state, ticks, idle share, interrupts",
        0,
    ),
    info("vcpu", "vcpu <guest>", "dump the vCPU state of a guest", 1),
    info(
        "ept",
        "ept <guest> <gpa>",
        "walk a guest's EPT for a guest-physical address",
        2,
    ),
    info(
        "iommu",
        "iommu",
        "show the VT-d units, their state and faults",
        0,
    ),
    info("pci", "pci", "list PCI functions and their owners", 0),
    info("irq", "irq", "show vectors, IRTEs and their owners", 0),
    info(
        "log",
        "log <error|warn|info|debug|trace>",
        "set the console log level",
        1,
    ),
    info("stop", "stop <guest>", "stop a guest", 1),
    info(
        "restart",
        "restart <guest>",
        "restart a guest from its initial state",
        1,
    ),
    info(
        "console",
        "console <guest>",
        "attach the console to a guest's serial port (Ctrl-] returns to the shell)",
        1,
    ),
    CommandInfo {
        aliases: &["exit"],
        ..info(
            "quit",
            "quit",
            "end the run through the normal exit path",
            0,
        )
    },
];

/// Width of the widest usage, for aligning the summaries in one column.
pub const USAGE_WIDTH: usize = {
    let mut width = 0;
    let mut i = 0;
    while i < COMMANDS.len() {
        if COMMANDS[i].usage.len() > width {
            width = COMMANDS[i].usage.len();
        }
        i += 1;
    }
    width
};

/// The entry for `name`, a command's name or alias (ASCII case-insensitive).
pub fn find_command(name: &str) -> Option<&'static CommandInfo> {
    COMMANDS.iter().find(|c| c.is_invoked_by(name))
}

/// Largest edit distance for which an unknown word gets a suggestion.
pub const SUGGESTION_DISTANCE: usize = 2;

/// The command an unknown word was probably meant to be: the single closest command within
/// [`SUGGESTION_DISTANCE`] edits (insertions, deletions, substitutions, adjacent transpositions),
/// or `None` if there is none or several are equally close.
pub fn suggest(word: &str) -> Option<&'static str> {
    let mut best: Option<(usize, &'static str)> = None;
    let mut tie = false;
    for c in &COMMANDS {
        // The closest of the command's words; a suggestion names the command itself.
        let Some(d) = core::iter::once(c.name)
            .chain(c.aliases.iter().copied())
            .filter_map(|w| bounded_distance(word.as_bytes(), w.as_bytes()))
            .min()
        else {
            continue;
        };
        match best {
            Some((b, _)) if d > b => {}
            Some((b, _)) if d == b => tie = true,
            _ => {
                best = Some((d, c.name));
                tie = false;
            }
        }
    }
    if tie {
        None
    } else {
        best.map(|(_, name)| name)
    }
}

/// Longest word compared (a longer one is further than [`SUGGESTION_DISTANCE`] from every
/// command, whose names are at most 7 bytes).
const MAX_COMPARED: usize = 15;

/// Optimal-string-alignment distance between `a` (compared ASCII case-insensitively) and the
/// command name `b`, or `None` when it certainly exceeds [`SUGGESTION_DISTANCE`].
fn bounded_distance(a: &[u8], b: &[u8]) -> Option<usize> {
    if a.len().abs_diff(b.len()) > SUGGESTION_DISTANCE || a.len() > MAX_COMPARED {
        return None;
    }
    if b.len() > MAX_COMPARED {
        return None;
    }
    // Row i of the dynamic-programming matrix lives in rows[i % 3].
    let mut rows = [[0usize; MAX_COMPARED + 1]; 3];
    for (j, cell) in rows[0].iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for i in 1..=a.len() {
        let (cur, prev, prev2) = (i % 3, (i + 2) % 3, (i + 1) % 3);
        rows[cur][0] = i;
        for j in 1..=b.len() {
            let ai = a[i - 1].to_ascii_lowercase();
            let bj = b[j - 1];
            let cost = usize::from(ai != bj);
            let mut d = (rows[prev][j] + 1)
                .min(rows[cur][j - 1] + 1)
                .min(rows[prev][j - 1] + cost);
            if i > 1 && j > 1 && ai == b[j - 2] && a[i - 2].to_ascii_lowercase() == bj {
                d = d.min(rows[prev2][j - 2] + 1);
            }
            rows[cur][j] = d;
        }
    }
    let d = rows[a.len() % 3][b.len()];
    (d <= SUGGESTION_DISTANCE).then_some(d)
}
