// The text of `trace` (a tree in pipeline order) and the short summary `errors show` ends with.
import type { Trace } from '../trace/trace.js';

const iso = (d: Date | null) => (d ? d.toISOString() : '?');
const short = (s: string | null | undefined, max = 90) => {
  const t = (s ?? '').replace(/\s+/g, ' ');
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/** A few lines: what the event became, its open errors. */
export function traceSummary(t: Trace): string[] {
  const open = t.errors.filter((e) => e.status === 'open');
  return [
    t.event
      ? `raw event ${t.event.id} (${t.event.provider ?? '-'} ${t.event.source_id ?? '-'}), normalize: ${t.normalize.outcome}`
      : t.archived
        ? `raw event archived to ${t.archived.uri}`
        : 'no raw event',
    `${t.interactions.length} interaction(s), contact ${t.contact?.contact.id ?? 'none'}, ${t.chunks.length} chunk(s), ${t.insights.length} insight(s), ${t.timeline.length} timeline entr${t.timeline.length === 1 ? 'y' : 'ies'}`,
    `${t.errors.length} dead letter(s), ${open.length} open`,
  ];
}

const branch = (items: string[], indent = '   ') => items.map((l, i) => `${indent}${i === items.length - 1 ? '└─' : '├─'} ${l}`);

export function renderTrace(t: Trace): string[] {
  const e = t.event;
  const lines: string[] = [];
  if (e) {
    lines.push(`raw event ${e.id}`);
    lines.push(
      ...branch(
        [
          `${e.provider ?? '-'} ${e.source_id ?? '-'}, user ${e.user_id}, occurred ${iso(e.occurred_at)}, stored ${iso(e.created_at)}, ${e.payload_bytes ?? 0} bytes`,
          t.import?.audit
            ? `imported in batch ${t.import.batchId} (sync_audit ${t.import.audit.id}, ${iso(t.import.audit.created_at)}${t.import.audit.run_id ? `, run ${t.import.audit.run_id}` : ''})`
            : `batch ${t.import?.batchId ?? '-'}: no sync_audit row`,
        ],
        '',
      ),
    );
  } else if (t.archived) {
    lines.push(
      `raw event archived: ${t.archived.uri} (${iso(t.archived.archivedAt)})${t.archived.part ? `, part ${t.archived.part}` : ''}`,
    );
  } else {
    lines.push('raw event: none in raw_events (found by its dead letters)');
  }
  lines.push(`normalize: ${t.normalize.outcome} — ${short(t.normalize.detail, 160)}`);
  lines.push(
    ...branch(
      t.interactions.map(
        (i) => `interaction ${i.id} ${i.type ?? '-'} ${iso(i.occurred_at)}${i.subject ? ` "${short(i.subject, 60)}"` : ''}`,
      ),
    ),
  );
  if (t.contact) {
    const c = t.contact.contact;
    lines.push(`contact ${c.id} ${c.display_name ?? '(no name)'}${c.primary_email ? ` <${c.primary_email}>` : ''}`);
    lines.push(...branch(t.contact.identities.map((i) => `${i.kind} ${i.value}${i.matched ? '   ← named by this event' : ''}`)));
  } else {
    lines.push('contact: none (not resolved)');
  }
  const models = [...new Set(t.chunks.map((c) => `${c.model ?? '?'} (${c.dimensions ?? '?'} d)`))].join(', ');
  lines.push(`embeddings: ${t.chunks.length} chunk(s)${models ? `, ${models}` : ''}`);
  lines.push(
    ...branch(t.chunks.map((c) => `${c.owner_id} #${c.chunk_index} ${c.content_hash?.slice(0, 16) ?? '-'}… ${c.tokens ?? '?'} tokens`)),
  );
  lines.push(`insights of the contact since: ${t.insights.length}`);
  lines.push(...branch(t.insights.map((i) => `${i.kind ?? '-'} "${short(i.title, 60)}" ${i.model ?? '-'} ${iso(i.created_at)}`)));
  lines.push(`timeline: ${t.timeline.length} entr${t.timeline.length === 1 ? 'y' : 'ies'}`);
  lines.push(...branch(t.timeline.map((x) => `${x.source_type ?? '-'} ${iso(x.occurred_at)} "${short(x.title, 70)}"`)));
  lines.push(`queued: ${t.queue.length ? '' : 'nothing'}`);
  lines.push(
    ...branch(
      t.queue.map((q) => `${q.stage} ${q.item_id} since ${iso(q.enqueued_at)}${q.claimed_by ? ` (claimed by ${q.claimed_by})` : ''}`),
    ),
  );
  lines.push(`dead letters: ${t.errors.length}`);
  lines.push(
    ...branch(
      t.errors.map(
        (x) =>
          `${x.id} ${x.stage} ${x.status}, ${x.attempts} attempt(s), ${iso(x.first_seen)} → ${iso(x.last_seen)}: ${short(x.error)}${x.close_reason ? ` [${x.close_reason}]` : ''}`,
      ),
    ),
  );
  lines.push(`runs: ${t.runs.length}`);
  lines.push(
    ...branch(
      t.runs.map((r) => `${r.id} ${r.command} ${r.status} ${iso(r.started_at)}: ${r.what}${r.exact ? '' : ' (live when it was written)'}`),
    ),
  );
  if (t.unknown.length) lines.push('not known:', ...branch(t.unknown));
  return lines;
}
