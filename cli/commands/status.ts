/** `swe-stream status [--json]`: per topic end offsets; per consumer group committed offsets and lag. */
import type { Command } from 'commander';
import { openBus } from '../bus.js';
import { allTopics } from '../../operators/pr/topology.js';
import { commonOptions, configFrom, type CommonFlags } from '../common.js';

/** One group's position on one topic: committed offset sum, end offset sum and lag (records). */
export interface GroupLag {
  group: string;
  topic: string;
  committed: number;
  end: number;
  lag: number;
}

export function registerStatus(program: Command): void {
  commonOptions(program.command('status').description('end offsets per topic; committed offsets and lag per consumer group').option('--json', 'print JSON')).action(
    async (flags: CommonFlags & { json?: boolean }) => {
      const cfg = configFrom(flags);
      const { transport } = await openBus(cfg);
      try {
        await transport.ensureTopics(allTopics().map((name) => ({ name, partitions: cfg.partitions })));
        const topics: Array<{ topic: string; partitions: number; end: number }> = [];
        const ends = new Map<string, Map<number, bigint>>();
        for (const t of allTopics()) {
          const offs = await transport.topicOffsets(t);
          ends.set(t, new Map(offs.map((o) => [o.partition, BigInt(o.high)])));
          topics.push({ topic: t, partitions: offs.length, end: offs.reduce((a, o) => a + Number(o.high), 0) });
        }
        const groups: GroupLag[] = [];
        for (const g of await transport.listGroups()) {
          const committed = await transport.groupOffsets(g, allTopics());
          const byTopic = new Map<string, typeof committed>();
          for (const c of committed) byTopic.set(c.topic, [...(byTopic.get(c.topic) ?? []), c]);
          for (const [topic, cs] of byTopic) {
            const e = ends.get(topic)!;
            let com = 0n;
            let end = 0n;
            for (const [p, hi] of e) {
              end += hi;
              com += BigInt(cs.find((c) => c.partition === p)?.offset ?? '0');
            }
            groups.push({ group: g, topic, committed: Number(com), end: Number(end), lag: Number(end - com) });
          }
        }
        if (flags.json) {
          process.stdout.write(JSON.stringify({ bus: cfg.bus, topics, groups }) + '\n');
          return;
        }
        process.stdout.write(`bus: ${cfg.bus}\n\ntopic                              partitions        end\n`);
        for (const t of topics) process.stdout.write(`${t.topic.padEnd(34)} ${String(t.partitions).padStart(10)} ${String(t.end).padStart(10)}\n`);
        process.stdout.write(`\ngroup                         topic                          committed        lag\n`);
        for (const g of groups) process.stdout.write(`${g.group.padEnd(29)} ${g.topic.padEnd(30)} ${String(g.committed).padStart(9)} ${String(g.lag).padStart(10)}\n`);
      } finally {
        await transport.close();
      }
    },
  );
}
