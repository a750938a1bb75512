import { emailSend } from '../../contract';
import { defineProcessor } from '../processor';

/**
 * Composes the message and hands it to the mail drop: `mail/<jobId>.eml` in the object
 * store, which a developer can open, or the SMTP relay when SMTP_URL is set. The name is the job id, so a re-run after a crash
 * overwrites the same message rather than sending a second one.
 */

const MESSAGE_ID_DOMAIN = 'platform-kit';
/** RFC 5322 §2.1.1: no line may exceed 998 characters. */
const MAX_LINE_LENGTH = 998;
const BASE64_LINE_LENGTH = 76;

export interface OutgoingMessage {
  messageId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  date: Date;
}

/** RFC 5322 wants a numeric zone; toUTCString() spells it "GMT". */
function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/**
 * Printable ASCII goes as is; anything else as RFC 2047 encoded words of whole
 * characters, each within the 75-character limit. Line breaks never reach a header
 * (no header injection): they are turned into spaces first.
 */
function encodeHeaderValue(value: string): string {
  const flat = value.replace(/[\r\n]+/g, ' ');
  if (/^[\x20-\x7e]*$/.test(flat)) return flat;
  const words: string[] = [];
  let current = '';
  for (const character of flat) {
    // 12 characters of `=?UTF-8?B??=` plus base64 of at most 45 bytes = 72.
    if (Buffer.byteLength(current + character) > 45) {
      words.push(current);
      current = '';
    }
    current += character;
  }
  if (current) words.push(current);
  return words.map((word) => `=?UTF-8?B?${Buffer.from(word).toString('base64')}?=`).join('\r\n ');
}

/** 7bit when the text is ASCII with short lines (readable in the drop), base64 otherwise. */
function encodeBody(text: string): { encoding: '7bit' | 'base64'; body: string } {
  const lines = text.replace(/\r\n|\r|\n/g, '\n').split('\n');
  if (/^[\x20-\x7e\t\n]*$/.test(lines.join('\n')) && lines.every((line) => line.length <= MAX_LINE_LENGTH)) {
    return { encoding: '7bit', body: lines.join('\r\n') };
  }
  const base64 = Buffer.from(lines.join('\r\n')).toString('base64');
  const wrapped = base64.match(new RegExp(`.{1,${BASE64_LINE_LENGTH}}`, 'g')) ?? [];
  return { encoding: 'base64', body: wrapped.join('\r\n') };
}

export function composeMessage(message: OutgoingMessage): Buffer {
  const { encoding, body } = encodeBody(message.text);
  const headers = [
    `From: ${message.from.replace(/[\r\n]+/g, '')}`,
    `To: ${message.to.replace(/[\r\n]+/g, '')}`,
    `Subject: ${encodeHeaderValue(message.subject)}`,
    `Date: ${rfc5322Date(message.date)}`,
    `Message-ID: ${message.messageId}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${encoding}`,
  ];
  return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}\r\n`);
}

export default defineProcessor(emailSend, async ({ jobId, input, mailDrop, signal }) => {
  const messageId = `<${jobId}@${MESSAGE_ID_DOMAIN}>`;
  const message = composeMessage({ messageId, from: mailDrop.from, to: input.to, subject: input.subject, text: input.text, date: new Date() });
  await mailDrop.write(`${jobId}.eml`, message, { signal, to: input.to });
  return { result: { messageId } };
});
