// One event of each provider in its native payload shape (what its API or webhook sends), built
// from a context the generator draws: the contact, the time and the ids of event `i`.
import { type Contact, OFFSETS, SHORT, TOPICS } from './people.js';
import type { Rng } from './random.js';

export interface Ctx {
  rng: Rng;
  i: number;
  time: Date;
  contact: Contact;
  owner: Contact;
  /** 8 hex chars of the seed: prefixes ids so runs with different seeds do not collide. */
  base: string;
  /** 8 hex chars unique to event `i` of this run (an invertible mix of i and the seed). */
  uid: (i: number) => string;
  account: string;
  emailBodyBytes: number | undefined;
}

const rfc2822 = (d: Date) => d.toUTCString().replace('GMT', '+0000');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
const escapeHtml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** The text, then paragraphs of the same sentences until it is about `bytes` long. */
function padded(text: string, bytes: number | undefined): string {
  if (bytes === undefined || text.length >= bytes) return text;
  const parts = [text];
  let length = text.length;
  for (let i = 0; length < bytes; i++) {
    const sentences = TOPICS[i % TOPICS.length]![1];
    const paragraph = `${i + 1}. ${sentences.join(' ')}`;
    parts.push(paragraph);
    length += paragraph.length + 2;
  }
  return parts.join('\n\n');
}

export function gmailEvent(c: Ctx): unknown {
  const { rng, contact, owner } = c;
  const sent = rng.chance(0.35);
  const [subject, sentences] = rng.pick(TOPICS);
  const body = `Hi ${sent ? contact.name.split(' ')[0] : owner.name.split(' ')[0]},\n\n${padded(sentences.slice(0, rng.int(2, 3)).join(' '), c.emailBodyBytes)}\n\nBest regards,\n${sent ? owner.name : `${contact.name}\n${contact.company}`}`;
  const html = `<div dir="ltr">${body
    .split('\n\n')
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, '<br>')}</p>`)
    .join('')}</div>`;
  const from = sent ? owner : contact;
  const to = sent ? contact : owner;
  const id = c.base + c.uid(c.i);
  const headers = [
    { name: 'MIME-Version', value: '1.0' },
    { name: 'Date', value: rfc2822(c.time) },
    { name: 'Message-ID', value: `<CA+${rng.hex(24)}@mail.gmail.com>` },
    { name: 'Subject', value: rng.chance(0.3) ? `Re: ${subject}` : subject },
    { name: 'From', value: `"${from.name}" <${from.email}>` },
    { name: 'To', value: `${to.name} <${rng.chance(0.2) ? to.email.toUpperCase() : to.email}>` },
  ];
  if (rng.chance(0.2)) headers.push({ name: 'Cc', value: `sales@${owner.email.split('@')[1]}` });
  const alternative = {
    mimeType: 'multipart/alternative',
    filename: '',
    headers: [{ name: 'Content-Type', value: `multipart/alternative; boundary="000000000000${rng.hex(12)}"` }],
    body: { size: 0 },
    parts: [
      {
        partId: '0',
        mimeType: 'text/plain',
        filename: '',
        headers: [{ name: 'Content-Type', value: 'text/plain; charset="UTF-8"' }],
        body: { size: Buffer.byteLength(body), data: b64(body) },
      },
      {
        partId: '1',
        mimeType: 'text/html',
        filename: '',
        headers: [{ name: 'Content-Type', value: 'text/html; charset="UTF-8"' }],
        body: { size: Buffer.byteLength(html), data: b64(html) },
      },
    ],
  };
  const withFile = rng.chance(0.15);
  const payload = withFile
    ? {
        partId: '',
        mimeType: 'multipart/mixed',
        filename: '',
        headers: [...headers, { name: 'Content-Type', value: `multipart/mixed; boundary="000000000000${rng.hex(12)}"` }],
        body: { size: 0 },
        parts: [
          { ...alternative, partId: '0', parts: alternative.parts.map((p) => ({ ...p, partId: `0.${p.partId}` })) },
          {
            partId: '1',
            mimeType: 'application/pdf',
            filename: 'order-form.pdf',
            headers: [{ name: 'Content-Disposition', value: 'attachment; filename="order-form.pdf"' }],
            body: { attachmentId: `ANGjdJ${rng.hex(40)}`, size: rng.int(20_000, 400_000) },
          },
        ],
      }
    : { ...alternative, partId: '', headers: [...headers, ...alternative.headers] };
  return {
    id,
    threadId: rng.chance(0.6) ? id : c.base + c.uid(Math.max(0, c.i - rng.int(1, 5))),
    labelIds: sent ? ['SENT'] : rng.chance(0.5) ? ['INBOX', 'UNREAD', 'CATEGORY_PERSONAL'] : ['INBOX', 'IMPORTANT', 'CATEGORY_PERSONAL'],
    snippet: escapeHtml(body.replace(/\s+/g, ' ').slice(0, 120)),
    historyId: String(1_000_000 + c.i * 7),
    internalDate: String(c.time.getTime()),
    sizeEstimate: 2_000 + body.length * 3,
    payload,
  };
}

export function twilioEvent(c: Ctx): unknown {
  const { rng, contact, owner } = c;
  const sid = `SM${c.base}${c.uid(c.i)}${rng.hex(16)}`;
  const account = c.account;
  const kind = rng.next();
  const text = rng.pick(SHORT);
  if (kind < 0.45) {
    const whatsapp = kind < 0.15;
    const media = whatsapp && rng.chance(0.4) ? 1 : 0;
    const p: Record<string, string> = {
      ToCountry: 'US',
      ToState: 'CA',
      SmsMessageSid: sid,
      NumMedia: String(media),
      ToCity: 'SAN FRANCISCO',
      FromZip: '',
      SmsSid: sid,
      FromState: '',
      SmsStatus: 'received',
      FromCity: '',
      Body: media && rng.chance(0.5) ? '' : text,
      FromCountry: '',
      To: owner.phone,
      MessagingServiceSid: `MG${account.slice(2).split('').reverse().join('')}`,
      ToZip: '94105',
      NumSegments: '1',
      ReferralNumMedia: '0',
      MessageSid: sid,
      AccountSid: account,
      From: contact.phone,
      ApiVersion: '2010-04-01',
    };
    if (whatsapp) {
      p.From = `whatsapp:${contact.phone}`;
      p.To = `whatsapp:${owner.phone}`;
      p.ProfileName = contact.name.split(' ')[0] as string;
      p.WaId = contact.phone.slice(1);
      p.MessageType = media ? 'image' : 'text';
    }
    if (media) {
      p.MediaContentType0 = 'image/jpeg';
      p.MediaUrl0 = `https://api.twilio.com/2010-04-01/Accounts/${account}/Messages/${sid}/Media/ME${rng.hex(32)}`;
    }
    return p;
  }
  const inbound = kind < 0.7;
  const date = rfc2822(c.time);
  return {
    account_sid: account,
    api_version: '2010-04-01',
    body: text,
    date_created: date,
    date_sent: date,
    date_updated: date,
    direction: inbound ? 'inbound' : 'outbound-api',
    error_code: null,
    error_message: null,
    from: inbound ? contact.phone : owner.phone,
    messaging_service_sid: null,
    num_media: '0',
    num_segments: '1',
    price: inbound ? '-0.00790' : '-0.00830',
    price_unit: 'USD',
    sid,
    status: inbound ? 'received' : 'delivered',
    subresource_uris: {
      media: `/2010-04-01/Accounts/${account}/Messages/${sid}/Media.json`,
      feedback: `/2010-04-01/Accounts/${account}/Messages/${sid}/Feedback.json`,
    },
    to: inbound ? owner.phone : contact.phone,
    uri: `/2010-04-01/Accounts/${account}/Messages/${sid}.json`,
  };
}

export function instagramEvent(c: Ctx): unknown {
  const { rng, contact, owner } = c;
  const ts = c.time.getTime();
  const echo = rng.chance(0.3);
  const [sender, recipient] = echo ? [owner.igsid, contact.igsid] : [contact.igsid, owner.igsid];
  const kind = rng.next();
  let item: Record<string, unknown>;
  if (kind < 0.06)
    item = {
      sender: { id: contact.igsid },
      recipient: { id: owner.igsid },
      timestamp: ts,
      read: { mid: b64(`ig_item:1:IGMessageID:${owner.igsid}:${c.base}${c.uid(c.i - 1)}`) },
    };
  else if (kind < 0.1)
    item = {
      sender: { id: contact.igsid },
      recipient: { id: owner.igsid },
      timestamp: ts,
      reaction: {
        mid: b64(`ig_item:1:IGMessageID:${owner.igsid}:${c.base}${c.uid(c.i - 1)}`),
        action: 'react',
        reaction: 'love',
        emoji: '❤️',
      },
    };
  else {
    const message: Record<string, unknown> = {
      mid: b64(`ig_item:1:IGMessageID:${owner.igsid}:${c.base}${c.uid(c.i)}`),
      text: rng.pick(SHORT),
    };
    if (echo) message.is_echo = true;
    if (!echo && rng.chance(0.12)) {
      delete message.text;
      message.attachments = [
        {
          type: 'image',
          payload: { url: `https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=${rng.digits(17)}&signature=${rng.hex(40)}` },
        },
      ];
    }
    item = { sender: { id: sender }, recipient: { id: recipient }, timestamp: ts, message };
  }
  if (rng.chance(0.25)) return item;
  return { object: 'instagram', entry: [{ time: ts + rng.int(200, 3_000), id: owner.igsid, messaging: [item] }] };
}

function isoWithOffset(d: Date, offset: string): string {
  if (offset === 'Z') return d.toISOString().replace('.000Z', 'Z');
  const minutes = (offset[0] === '-' ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  return new Date(d.getTime() + minutes * 60_000).toISOString().slice(0, 19) + offset;
}

export function webformEvent(c: Ctx): unknown {
  const { rng, contact } = c;
  const [form_id, form_name] = rng.pick([
    ['contact-us', 'Contact us'],
    ['demo-request', 'Book a demo'],
    ['quote', 'Request a quote'],
  ] as const);
  const [topic, sentences] = rng.pick(TOPICS);
  const fields: Record<string, unknown> = { name: contact.name, email: contact.email, company: contact.company };
  if (rng.chance(0.7)) fields.phone = contact.phone;
  if (form_id === 'quote') {
    fields.budget = rng.pick(['< 5k', '5k–20k', '20k+']);
    fields.seats = rng.int(3, 200);
    fields.products = ['CRM', 'Inbox'].slice(0, rng.int(1, 2));
  } else fields.message = `${topic}. ${sentences.join(' ')}`;
  fields.consent = true;
  fields.utm_source = rng.pick(['google', 'newsletter', 'linkedin', 'direct']);
  const uuid = `${c.base}-${rng.hex(4)}-4${rng.hex(3)}-${rng.pick(['8', '9', 'a', 'b'])}${rng.hex(3)}-${c.uid(c.i)}${rng.hex(4)}`;
  return {
    id: uuid,
    form_id,
    form_name,
    submitted_at: isoWithOffset(c.time, rng.pick(OFFSETS)),
    fields,
    page_url: `https://www.example.com/${form_id}?utm_source=${String(fields.utm_source)}`,
    user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  };
}
