/**
 * One vocabulary for the state of a second of a stream's archive, used by every output: `run`'s
 * summary, `status` (text, `--json` documentation, the HTML page) and the player page. Issue 25:
 * "hole" meant "not recorded" on one page and "not copied" on the other.
 *
 * - not recorded: the source recorded nothing there (a gap in its archive); nothing to copy.
 * - not yet copied: recorded by the source and due, not in the backup yet.
 * - not yet due: inside the settle margin or the window still being recorded.
 * - not in the backup: what a page that does not ask the source can say of a gap between stored
 *   ranges (either of the first two; `status` tells which).
 *
 * The player page (functions/playback/page/page.js, plain browser JS) spells the same words and colours.
 */
export const COVERAGE_WORDS = {
  recorded: "recorded at the source",
  notRecorded: "not recorded",
  stored: "in the backup",
  notYetCopied: "not yet copied",
  notYetDue: "not yet due",
  notStored: "not in the backup",
} as const;

/** The colour of each state, the same on every page. */
export const COVERAGE_COLORS = {
  recorded: "#8c99a6",
  stored: "#2f9e44",
  notYetCopied: "#e03131",
  notYetDue: "#f59f00",
  /** A gap a page cannot classify: neutral, not the red of "not yet copied". */
  notStored: "#c3c8cf",
} as const;
