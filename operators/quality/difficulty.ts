/**
 * Task difficulty from the size of the gold patch (ARCHITECTURE.md §7), and from the solver pass rate when
 * trajectories exist.
 *
 * Thresholds and their rationale:
 * - easy: one file, ≤ 3 hunks, ≤ 15 changed lines. The file/hunk bound is SWE-bench Lite's selection rule
 *   ("the gold patch edits a single file with at most 3 hunks", Jimenez et al., swebench.com/lite); the line
 *   bound keeps it to what SWE-bench Verified annotators mostly rated "< 15 min fix".
 * - hard: ≥ 4 files, or > 10 hunks, or > 100 changed lines — multi-file changes of that size fall mostly in
 *   Verified's "1–4 hours" and "> 4 hours" buckets, and the Scale-SWE paper (arXiv 2602.09892) reports its own
 *   instances' median edit as a few files / tens of lines, which we want to land in medium.
 * - medium: everything between.
 * Changed lines = added + removed lines of the gold patch (tests excluded).
 */
import { parseDiff } from '../pr/patch.js';
import type { Difficulty } from '../../schemas/types.gen.js';

/** Difficulty.level values. */
export type DifficultyLevel = 'easy' | 'medium' | 'hard';

/** The cut points of {@link difficultyFromCounts} (files, hunks, changed lines); rationale in the file comment. */
export const DIFFICULTY_THRESHOLDS = {
  easy: { maxFiles: 1, maxHunks: 3, maxLines: 15 },
  hard: { minFiles: 4, minHunks: 11, minLines: 101 },
} as const;

/** Difficulty from counts (files touched, hunks, changed lines). */
export function difficultyFromCounts(files: number, hunks: number, lines: number): Difficulty {
  const e = DIFFICULTY_THRESHOLDS.easy;
  const h = DIFFICULTY_THRESHOLDS.hard;
  const level: DifficultyLevel =
    files <= e.maxFiles && hunks <= e.maxHunks && lines <= e.maxLines
      ? 'easy'
      : files >= h.minFiles || hunks >= h.minHunks || lines >= h.minLines
        ? 'hard'
        : 'medium';
  return { files, hunks, lines, level };
}

/** Difficulty of a gold patch (unified diff). Binary files count as files with no hunks. */
export function difficultyOfPatch(goldPatch: string): Difficulty {
  const files = parseDiff(goldPatch);
  return difficultyFromCounts(
    files.length,
    files.reduce((n, f) => n + f.hunks.length, 0),
    files.reduce((n, f) => n + f.additions + f.deletions, 0),
  );
}

/**
 * Level from the solver pass rate over K attempts (0…1), or null when nothing was distilled. The cut points
 * follow the usual pass@k reading: solved in most attempts → easy, in none → hard.
 * @throws RangeError when passRate is outside 0…1.
 */
export function difficultyFromPassRate(passRate: number | null): DifficultyLevel | null {
  if (passRate === null) return null;
  if (!(passRate >= 0 && passRate <= 1)) throw new RangeError(`pass rate ${passRate} outside 0…1`);
  return passRate >= 2 / 3 ? 'easy' : passRate > 0 ? 'medium' : 'hard';
}
