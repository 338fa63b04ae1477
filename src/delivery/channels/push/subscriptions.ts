import type { Db } from '../../../store/index.js';

/** A browser's push subscription as PushSubscription.toJSON() gives it. */
export interface PushSubscriptionRecord {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/**
 * Stores a subscription for a customer. Keyed by endpoint: the same browser subscribing again (or
 * after a different customer logged in on it) moves the endpoint to the current customer, so a
 * shared device never receives the previous customer's notifications.
 */
export async function savePushSubscription(db: Db, workspaceId: string, customerId: string, sub: PushSubscriptionRecord, now: number): Promise<void> {
  await db
    .insertInto('push_subscriptions')
    .values({ workspace_id: workspaceId, endpoint: sub.endpoint, customer_id: customerId, p256dh: sub.keys.p256dh, auth: sub.keys.auth, created_at: now, updated_at: now })
    .onConflict((oc) => oc.columns(['workspace_id', 'endpoint']).doUpdateSet({ customer_id: customerId, p256dh: sub.keys.p256dh, auth: sub.keys.auth, updated_at: now }))
    .execute();
}

export async function listPushSubscriptions(db: Db, workspaceId: string, customerIds: readonly string[]): Promise<PushSubscriptionRecord[]> {
  if (customerIds.length === 0) return [];
  const rows = await db.selectFrom('push_subscriptions').select(['endpoint', 'p256dh', 'auth']).where('workspace_id', '=', workspaceId).where('customer_id', 'in', customerIds).orderBy('updated_at', 'desc').execute();
  return rows.map((r) => ({ endpoint: r.endpoint, keys: { p256dh: r.p256dh, auth: r.auth } }));
}

/** Removes a subscription (the push service answered 404/410, or the browser unsubscribed). True when one was removed. */
export async function deletePushSubscription(db: Db, workspaceId: string, endpoint: string, customerId?: string): Promise<boolean> {
  let q = db.deleteFrom('push_subscriptions').where('workspace_id', '=', workspaceId).where('endpoint', '=', endpoint);
  if (customerId !== undefined) q = q.where('customer_id', '=', customerId);
  const r = await q.executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** Checks the keys of a subscription: p256dh a 65-byte uncompressed P-256 point, auth 16 bytes, both base64url. */
export function subscriptionKeyProblem(sub: PushSubscriptionRecord): { path: string; reason: string } | undefined {
  const bytes = (s: string): number => (/^[A-Za-z0-9_-]+=*$/.test(s) ? Buffer.from(s, 'base64url').length : -1);
  if (bytes(sub.keys.p256dh) !== 65) return { path: 'keys.p256dh', reason: 'expected the base64url of a 65-byte P-256 public key' };
  if (bytes(sub.keys.auth) !== 16) return { path: 'keys.auth', reason: 'expected the base64url of 16 bytes' };
  return undefined;
}
