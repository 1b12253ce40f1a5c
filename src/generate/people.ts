// Who writes to the CRM in generated data, and what they write about: names, companies, phone
// numbers valid in several numbering plans, and the sentences messages are made of.
import type { Rng } from './random.js';

const FIRST = [
  'Sofía',
  'Lukas',
  'Amara',
  'Kenji',
  'Zoë',
  'Mateo',
  'Priya',
  'Olu',
  'Björn',
  'Chloé',
  'Tomás',
  'Yuki',
  'Fatima',
  'Liam',
  'Ana',
  'Noah',
  'Léa',
  'Ravi',
  'Ingrid',
  'Wei',
];
const LAST = [
  'Rossi',
  'Müller',
  'Okafor',
  'Tanaka',
  'García',
  'Dubois',
  'Sharma',
  'Novák',
  'Andersson',
  'Nguyễn',
  'Kowalski',
  'O’Brien',
  'Costa',
  'Haddad',
  'Smith',
  'Lindqvist',
];
const COMPANIES = [
  'Rossi Design',
  'Nordlicht GmbH',
  'Okafor & Sons',
  'Sakura Labs',
  'Verde Foods',
  'Atelier Dubois',
  'Bluefin Logistics',
  'Acme Retail',
];
// Valid numbers in several numbering plans (checked by libphonenumber's metadata): prefix + digits to add.
const PHONE_PLANS: [string, number][] = [
  ['+1415', 7],
  ['+1212', 7],
  ['+1646', 7],
  ['+447400', 6],
  ['+34612', 6],
  ['+39347', 7],
  ['+4915112', 6],
  ['+81901', 7],
  ['+33612', 6],
  ['+5511987', 6],
];
export const TOPICS: [string, string[]][] = [
  [
    'Pricing for the Pro plan',
    [
      'Could you send over pricing for 25 seats on the Pro plan?',
      'We would also need SSO and an annual invoice.',
      'Our budget is approved for Q3, so timing is good.',
    ],
  ],
  [
    'Demo next week',
    [
      'Thanks for the call today, it was really helpful.',
      'Would Tuesday at 10:00 work for a demo with our ops team?',
      'Please include the reporting module if possible.',
    ],
  ],
  [
    'Invoice INV-2025-0412',
    [
      'I am attaching the signed order form.',
      'Finance asked whether the invoice can show our VAT number.',
      'Payment will go out by the end of the month.',
    ],
  ],
  [
    'Re: onboarding checklist',
    [
      'We finished importing the contacts yesterday.',
      'Two users still cannot log in — could you check their invitations?',
      'Otherwise everything looks great, merci!',
    ],
  ],
  [
    'Contract renewal',
    [
      'Our contract renews on the 1st and we would like to add two more teams.',
      'Is the current discount still available for a two-year term?',
      'Happy to jump on a call this week.',
    ],
  ],
  [
    'Quick question about the API',
    [
      'Is there a rate limit on the contacts endpoint?',
      'We sync about 40k records a night and saw a few 429 responses.',
      'Grüße aus dem Team!',
    ],
  ],
];
export const SHORT = [
  'Hi! Is the spring collection still available? 🌸',
  'Can I book a table for 4 on Friday at 8pm?',
  'Thanks, got it 👍',
  'What are your opening hours on Sunday?',
  'Do you ship to Canada?',
  'Perfect, see you tomorrow!',
  'Could you send me the catalogue as PDF?',
  'Mi pedido aún no ha llegado, ¿me ayudan?',
  'Ok 😊 merci beaucoup',
  'Is the 10% code still valid?',
];
export const OFFSETS = ['+00:00', '+01:00', '+02:00', '-04:00', '-07:00', '+05:30', '+09:00', 'Z'];

export interface Contact {
  name: string;
  email: string;
  phone: string;
  igsid: string;
  company: string;
}

export function makeContacts(rng: Rng, n: number): Contact[] {
  const out: Contact[] = [];
  for (let i = 0; i < n; i++) {
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const plain = (s: string) =>
      s
        .normalize('NFD')
        .replace(/[^A-Za-z]/g, '')
        .toLowerCase();
    const domain = rng.pick(['example.com', 'example.org', 'example.net', `${plain(last)}.example`]);
    const [prefix, rest] = rng.pick(PHONE_PLANS);
    out.push({
      name: `${first} ${last}`,
      email: `${plain(first)}.${plain(last)}${i}@${domain}`,
      phone: prefix + String(rng.int(2, 8)) + rng.digits(rest - 1),
      igsid: `17841${rng.digits(11)}`,
      company: rng.pick(COMPANIES),
    });
  }
  return out;
}
