// Instagram Messaging webhooks (Messenger Platform for Instagram): one `messaging[]` item, or a
// whole notification body `{object: 'instagram', entry: [{id, time, messaging: […]}]}`.
// https://developers.facebook.com/docs/instagram-platform/webhooks/examples
import { z } from 'zod';

const scopedId = z.string().regex(/^[0-9]{1,32}$/, 'is not an Instagram-scoped id (digits)');
const party = z.object({ id: scopedId });
const ms = z.number().int(); // milliseconds since the epoch

const attachment = z.object({
  type: z.string(),
  // story_mention, share and ig_reel payloads carry more than a url (title, reel_video_id…).
  payload: z.looseObject({ url: z.string().optional(), title: z.string().optional() }).nullish(),
});

const messageSchema = z.object({
  mid: z.string().min(1),
  text: z.string().optional(),
  is_echo: z.boolean().optional(),
  is_deleted: z.boolean().optional(),
  is_unsupported: z.boolean().optional(),
  attachments: z.array(attachment).optional(),
  reply_to: z
    .looseObject({ mid: z.string().optional(), story: z.looseObject({ url: z.string().optional(), id: z.string().optional() }).optional() })
    .optional(),
  quick_reply: z.object({ payload: z.string() }).optional(),
  referral: z.looseObject({}).optional(),
});

export const itemSchema = z.object({
  sender: party,
  recipient: party,
  timestamp: ms,
  message: messageSchema.optional(),
  reaction: z
    .looseObject({
      mid: z.string().optional(),
      action: z.string().optional(),
      emoji: z.string().optional(),
      reaction: z.string().optional(),
    })
    .optional(),
  read: z.looseObject({ mid: z.string().optional() }).optional(),
  postback: z.looseObject({ mid: z.string().optional(), title: z.string().optional(), payload: z.string().optional() }).optional(),
  referral: z.looseObject({}).optional(),
});
export type MessagingItem = z.output<typeof itemSchema>;

// Items are validated one by one (itemSchema), so one bad item is one dead letter and never
// costs the valid messages beside it. Only what normalization needs is required: entry[].time
// (when Instagram sent the batch) is not.
export const bodySchema = z.object({
  object: z.literal('instagram'),
  entry: z.array(
    z.object({
      id: z.string(),
      time: ms.optional(),
      // Entries for comments, mentions… carry `changes` instead: not messages.
      messaging: z.array(z.unknown()).optional(),
      // Messages that arrived while another app had control of the conversation: still messages.
      standby: z.array(z.unknown()).optional(),
    }),
  ),
});
