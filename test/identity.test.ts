// Canonical identities (SPEC §6): the same person must always come out the same.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addIdentity,
  canonicalEmail,
  canonicalPhone,
  identityKey,
  identityOf,
  instagramId,
  parseAddressList,
  parseIdentity,
} from '../src/identity.js';
import type { Identity } from '../src/providers/types.js';

describe('canonicalEmail', () => {
  it('drops display names and angle brackets, trims and lower-cases', () => {
    assert.equal(canonicalEmail('"Sofía Rossi" <Sofia.Rossi@Example.COM>'), 'sofia.rossi@example.com');
    assert.equal(canonicalEmail('  Sofia.Rossi@Example.COM \n'), 'sofia.rossi@example.com');
    assert.equal(canonicalEmail('Sofía Rossi <sofia@example.com>'), 'sofia@example.com');
    assert.equal(canonicalEmail('<sofia@example.com>'), 'sofia@example.com');
    assert.equal(canonicalEmail('"a <b@c.com>" <real@example.com>'), 'real@example.com');
    assert.equal(canonicalEmail('sofia@example.com (Sofia Rossi)'), 'sofia@example.com');
  });

  it('keeps plus tags, dots and subdomains as they are', () => {
    assert.equal(canonicalEmail('Sofia.Rossi+CRM@Mail.Example.co.uk'), 'sofia.rossi+crm@mail.example.co.uk');
  });

  it('reads mailto: URIs', () => {
    assert.equal(canonicalEmail('mailto:Sales@Example.com?subject=Hi'), 'sales@example.com');
    assert.equal(canonicalEmail('mailto:j%C3%B6rg@example.com'), 'jörg@example.com');
  });

  it('returns null for anything that is not one address', () => {
    for (const bad of [
      '',
      '   ',
      'sofia',
      'sofia@',
      '@example.com',
      'sofia@example',
      'sofia@@example.com',
      'so fia@example.com',
      'a@b.com, c@d.com',
      '.sofia@example.com',
      'sofia.@example.com',
      'so..fia@example.com',
      'sofia@exa mple.com',
      'Sofia Rossi',
      '<>',
    ]) {
      assert.equal(canonicalEmail(bad), null, bad);
    }
    assert.equal(canonicalEmail(null), null);
    assert.equal(canonicalEmail(42), null);
    assert.equal(canonicalEmail(`${'a'.repeat(250)}@example.com`), null);
  });
});

describe('parseAddressList', () => {
  it('splits several addresses, keeping display names with commas in quotes', () => {
    assert.deepEqual(parseAddressList('"Rossi, Sofía" <Sofia@Example.com>, bob@example.org, Zoë Müller <zoe@muller.example>'), [
      { name: 'Rossi, Sofía', email: 'sofia@example.com' },
      { name: null, email: 'bob@example.org' },
      { name: 'Zoë Müller', email: 'zoe@muller.example' },
    ]);
  });

  it('reads groups, comments, escapes and the empty group', () => {
    assert.deepEqual(
      parseAddressList('Sales: "Ana \\"AC\\" Costa" <ana@example.org>, ravi@example.net (Ravi S.);, undisclosed-recipients:;'),
      [
        { name: 'Ana "AC" Costa', email: 'ana@example.org' },
        { name: 'Ravi S.', email: 'ravi@example.net' },
      ],
    );
    assert.deepEqual(parseAddressList('"Ana (Billing)" <ana@example.org>'), [{ name: 'Ana (Billing)', email: 'ana@example.org' }]);
  });

  it('drops invalid entries and duplicates (first one wins)', () => {
    assert.deepEqual(parseAddressList('nobody, A <a@example.com>, "Again" <A@EXAMPLE.com>, , <>'), [{ name: 'A', email: 'a@example.com' }]);
  });

  it('returns encoded words untouched (the mail provider decodes them)', () => {
    assert.deepEqual(parseAddressList('=?UTF-8?B?U29mw61h?= <s@example.com>'), [{ name: '=?UTF-8?B?U29mw61h?=', email: 's@example.com' }]);
  });

  it('is empty for nothing', () => {
    assert.deepEqual(parseAddressList(undefined), []);
    assert.deepEqual(parseAddressList(''), []);
  });
});

describe('canonicalPhone', () => {
  it('gives E.164 for international input in any formatting', () => {
    assert.equal(canonicalPhone('+1 (415) 555-1234'), '+14155551234');
    assert.equal(canonicalPhone('+44 20 7946 0958'), '+442079460958');
    assert.equal(canonicalPhone('+39 347 123 4567'), '+393471234567');
  });

  it('reads WhatsApp, tel: and sms: addresses', () => {
    assert.equal(canonicalPhone('whatsapp:+14155551234'), '+14155551234');
    assert.equal(canonicalPhone('WhatsApp:+4915112345678'), '+4915112345678');
    assert.equal(canonicalPhone('tel:+1-415-555-1234'), '+14155551234');
  });

  it('reads national formats with a default region', () => {
    assert.equal(canonicalPhone('(415) 555-1234', 'US'), '+14155551234');
    assert.equal(canonicalPhone('020 7946 0958', 'GB'), '+442079460958');
    assert.equal(canonicalPhone('06 12 34 56 78', 'fr'), '+33612345678');
    assert.equal(canonicalPhone('0044 20 7946 0958', 'FR'), '+442079460958', 'international prefix of the region');
    assert.equal(canonicalPhone('+14155551234', 'GB'), '+14155551234', 'an international number ignores the region');
  });

  it('returns null for invalid numbers and non-numbers', () => {
    assert.equal(canonicalPhone('020 7946 0958'), null, 'national format without a region');
    assert.equal(canonicalPhone('020 7946 0958', 'ZZ'), null, 'unknown region');
    assert.equal(canonicalPhone('020 7946 0958', 'not a region'), null);
    for (const bad of [
      '',
      '12345',
      '+999123',
      '+1 555',
      'call me',
      'sofia@example.com',
      'messenger:12345678',
      '+1 415 555 1234 and more text',
    ]) {
      assert.equal(canonicalPhone(bad), null, bad);
    }
    assert.equal(canonicalPhone(14155551234), null, 'numbers must be strings');
    assert.equal(canonicalPhone(undefined), null);
  });

  it('gives the same answer from its cache', () => {
    for (let i = 0; i < 3; i++) {
      assert.equal(canonicalPhone('+1 415 555 1234'), '+14155551234');
      assert.equal(canonicalPhone('0415 555 1234'), null);
      assert.equal(canonicalPhone('(415) 555-1234', 'US'), '+14155551234');
      assert.equal(canonicalPhone('(415) 555-1234'), null, 'the region is part of the cache key');
    }
  });
});

describe('instagramId', () => {
  it('accepts numeric scoped ids as strings or safe integers', () => {
    assert.equal(instagramId('6428719305487112'), '6428719305487112');
    assert.equal(instagramId(' 17841405822304914 '), '17841405822304914');
    assert.equal(instagramId(1234567), '1234567');
  });
  it('refuses anything else', () => {
    for (const bad of ['', 'sofia.rossi', '12 34', '-5', null, undefined, 2 ** 60, 1.5, 0])
      assert.equal(instagramId(bad), null, String(bad));
  });
});

describe('identityOf / parseIdentity / addIdentity', () => {
  it('builds identities by kind, null when invalid', () => {
    assert.deepEqual(identityOf('email', 'A <A@B.com>'), { kind: 'email', value: 'a@b.com' });
    assert.deepEqual(identityOf('phone', '415 555 1234', { defaultRegion: 'US' }), { kind: 'phone', value: '+14155551234' });
    assert.deepEqual(identityOf('instagram_id', '123456'), { kind: 'instagram_id', value: '123456' });
    assert.equal(identityOf('email', 'nope'), null);
    assert.equal(identityOf('phone', 'nope'), null);
  });

  it('guesses the kind of what a person typed', () => {
    assert.deepEqual(parseIdentity('Sofia@Example.com'), { kind: 'email', value: 'sofia@example.com' });
    assert.deepEqual(parseIdentity('+1 415 555 1234'), { kind: 'phone', value: '+14155551234' });
    assert.deepEqual(parseIdentity('ig:6428719305487112'), { kind: 'instagram_id', value: '6428719305487112' });
    assert.deepEqual(parseIdentity('phone:020 7946 0958', { defaultRegion: 'GB' }), { kind: 'phone', value: '+442079460958' });
    assert.equal(parseIdentity('whoever'), null);
  });

  it('adds each identity once and ignores null', () => {
    const list: Identity[] = [];
    addIdentity(list, { kind: 'email', value: 'a@b.com' });
    addIdentity(list, { kind: 'email', value: 'a@b.com' });
    addIdentity(list, null);
    addIdentity(list, { kind: 'phone', value: '+14155551234' });
    assert.deepEqual(list.map(identityKey), ['email:a@b.com', 'phone:+14155551234']);
  });
});
