// Payloads recorded from the real APIs (fixtures/recorded/, sources in SOURCES.md), not written
// by hand: each is identified and normalized the way SPEC §5 says, whatever real payloads do that
// documentation does not (lowercase headers, missing partIds, standby[], numbers as strings).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { packageRoot } from '../src/paths.js';
import { decodeBytes } from '../src/providers/gmail/charset.js';
import { providers } from '../src/providers/index.js';
import type { NormalizeResult } from '../src/providers/types.js';

const dir = path.join(packageRoot, 'fixtures', 'recorded');
const load = (file: string): Record<string, unknown> =>
  JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;

function run(file: string): { id: string; result: NormalizeResult } {
  const provider = providers[file.split('/')[0]!]!;
  const payload = load(file);
  const id = provider.identify(payload).sourceId;
  return {
    id,
    result: provider.normalize({
      id: 'r1',
      userId: 'u1',
      provider: provider.name,
      sourceId: id,
      occurredAt: new Date('2025-01-01T00:00:00Z'),
      payload,
    }),
  };
}

/** What each recorded payload must become: [type, text it starts with] per interaction, or a skip, a withdrawal, a rejected item. */
const expected: Record<
  string,
  { interactions?: [string, string | null][]; skip?: RegExp; retracted?: number; rejected?: RegExp; id?: RegExp }
> = {
  'gmail/alternative-with-related-inline-image.json': { interactions: [['email_sent', null]] },
  'gmail/api-sent-plain-lowercase-headers.json': { interactions: [['email_sent', 'The actual message text goes here']] },
  'gmail/digest-parallel-html-without-charset.json': { interactions: [['email_received', '<div']] },
  'gmail/latin1-header-utf8-body-html.json': { interactions: [['email_received', 'BookBub Home']] },
  'gmail/mixed-attachments-missing-partid.json': { interactions: [['email_sent', 'cool *stuff*']] },
  'gmail/nonascii-subject-html-only.json': { interactions: [['email_received', 'Plus, South Korean Leader']] },
  'twilio/rest-inbound-mms.json': { interactions: [['sms_received', null]] },
  'twilio/rest-outbound-reply-delivered.json': { interactions: [['sms_sent', 'Welcome to ZomboCom.']] },
  'twilio/rest-outbound-whatsapp-queued.json': { interactions: [['whatsapp_sent', 'Testing whatsapp integration! 😎']] },
  'twilio/status-callback-whatsapp-delivered.json': { skip: /^status callback \(MessageStatus=delivered\)/, id: /:status:delivered$/ },
  'twilio/status-callback-whatsapp-sent.json': { skip: /^status callback \(MessageStatus=sent\)/, id: /:status:sent$/ },
  'twilio/webhook-sms-inbound.json': { interactions: [['sms_received', 'twilio-go testing!']] },
  'twilio/webhook-whatsapp-image.json': { interactions: [['whatsapp_received', null]] },
  'twilio/webhook-whatsapp-location.json': { interactions: [['whatsapp_received', null]] },
  'instagram/body-echo-text.json': { interactions: [['dm_sent', 'test']] },
  'instagram/body-standby-text.json': { interactions: [['dm_received', 'Hello']] },
  'instagram/body-story-reply.json': { interactions: [['dm_received', 'Hello story']] },
  // The reporter replaced the ids with placeholders ("sender_id"): not Instagram-scoped ids, so
  // that item is rejected on its own, and the body's withdrawal key still names the message.
  'instagram/body-unsend-is-deleted.json': { rejected: /sender\.id is not an Instagram-scoped id/, id: /^ig:deleted:message_id$/ },
  'instagram/body-unsupported-attachment.json': { interactions: [['dm_received', null]] },
  'instagram/item-echo-deleted.json': { retracted: 1, id: /^ig:deleted:/ },
  'instagram/item-story-mention.json': { interactions: [['dm_received', null]] },
};

describe('payloads recorded from the real APIs', () => {
  it('every recorded payload has an expectation and a source', () => {
    const files = ['gmail', 'twilio', 'instagram'].flatMap((p) =>
      fs
        .readdirSync(path.join(dir, p))
        .filter((f) => f.endsWith('.json'))
        .map((f) => `${p}/${f}`),
    );
    assert.deepEqual(files.sort(), Object.keys(expected).sort());
    const sources = fs.readFileSync(path.join(dir, 'SOURCES.md'), 'utf8');
    for (const f of files) assert.ok(sources.includes(`\`${f}\``), `${f} has no line in SOURCES.md`);
  });

  for (const [file, want] of Object.entries(expected)) {
    it(file, () => {
      const { id, result } = run(file);
      if (want.id) assert.match(id, want.id);
      if (want.skip) {
        assert.equal(result.kind, 'skip');
        assert.match((result as { reason: string }).reason, want.skip);
        return;
      }
      assert.equal(result.kind, 'interactions');
      const r = result as Extract<NormalizeResult, { kind: 'interactions' }>;
      assert.equal(r.retracted?.length ?? 0, want.retracted ?? 0);
      if (want.rejected) assert.match(r.rejected?.[0]?.error.message ?? '', want.rejected);
      else assert.equal(r.rejected?.length ?? 0, 0);
      assert.deepEqual(
        r.interactions.map((i) => [
          i.type,
          i.bodyText === null ? null : i.bodyText.slice(0, (want.interactions?.find(([t]) => t === i.type)?.[1] ?? '').length),
        ]),
        want.interactions ?? [],
      );
      for (const i of r.interactions) {
        assert.ok(i.occurredAt.getUTCFullYear() >= 2008, `${file}: time ${i.occurredAt.toISOString()}`);
        assert.doesNotMatch(JSON.stringify(i), /Ã[\u0080-\u00bf]|Â[\u0080-\u00bf]/, 'no UTF-8 decoded twice');
      }
    });
  }

  it('Gmail: a part labelled iso-8859-1 whose bytes are UTF-8 stays UTF-8 (SPEC §5), byte for byte as recorded', () => {
    const message = load('gmail/latin1-header-utf8-body-html.json') as {
      payload: { parts: { mimeType: string; headers: { name: string; value: string }[]; body: { data: string } }[] };
    };
    const html = message.payload.parts.find((p) => p.mimeType === 'text/html')!;
    assert.match(html.headers.find((h) => h.name.toLowerCase() === 'content-type')!.value, /iso-8859-1/i);
    const bytes = Buffer.from(html.body.data, 'base64url');
    const text = decodeBytes(bytes, 'iso-8859-1');
    assert.ok(text.includes('·'), 'the middle dot decoded once');
    assert.doesNotMatch(text, /Â·|Â\u00a0/);
    // Real Latin-1 bytes (not valid UTF-8) still follow the label.
    assert.equal(decodeBytes(Buffer.from('Grüße', 'latin1'), 'iso-8859-1'), 'Grüße');
  });
});
