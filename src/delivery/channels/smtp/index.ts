/** Email over SMTP (nodemailer): composition, List-Unsubscribe headers, error classification. */
export { SmtpAdapter, classifySmtpError } from './adapter.js';
export { composeEmail, htmlToText, escapeHtml, type ComposedEmail } from './compose.js';
