// Twilio Programmable Messaging, in the two shapes a CRM stores:
// - the parameters of an incoming-message webhook (form-encoded, so every value is a string);
//   https://www.twilio.com/docs/messaging/guides/webhook-request
// - a REST Message resource (snake_case JSON from /2010-04-01/Accounts/{sid}/Messages/{sid}.json).
//   https://www.twilio.com/docs/messaging/api/message-resource
import { z } from 'zod';

// Webhook values arrive as strings; exports that parsed them may hold numbers.
const count = z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()], { error: 'expected a count' });

export const webhookSchema = z.looseObject({
  MessageSid: z.string().min(1).optional(),
  SmsMessageSid: z.string().min(1).optional(),
  SmsSid: z.string().min(1).optional(),
  AccountSid: z.string().optional(),
  MessagingServiceSid: z.string().optional(),
  From: z.string().min(1),
  To: z.string().min(1),
  Body: z.string().optional(),
  NumMedia: count.optional(),
  NumSegments: count.optional(),
  SmsStatus: z.string().optional(),
  MessageStatus: z.string().optional(),
  ProfileName: z.string().optional(),
  WaId: z.string().optional(),
});
export type Webhook = z.output<typeof webhookSchema>;

const directions = ['inbound', 'outbound-api', 'outbound-call', 'outbound-reply'] as const;

export const restSchema = z.object({
  sid: z.string().min(1),
  account_sid: z.string().nullish(),
  messaging_service_sid: z.string().nullish(),
  // null while a message sent through a Messaging Service has no sender assigned yet.
  from: z.string().nullable(),
  to: z.string().min(1),
  body: z.string().nullish(),
  direction: z.enum(directions),
  status: z.string().nullish(),
  date_sent: z.string().nullish(),
  date_created: z.string().nullish(),
  date_updated: z.string().nullish(),
  num_media: count.nullish(),
  num_segments: count.nullish(),
  error_code: z.union([z.number(), z.string()]).nullish(),
  error_message: z.string().nullish(),
  subresource_uris: z.looseObject({ media: z.string().optional() }).nullish(),
});
export type RestMessage = z.output<typeof restSchema>;
