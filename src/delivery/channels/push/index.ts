/** Web push with VAPID: the adapter, the payload and the subscriptions store. */
export { WebPushAdapter, pushPayload, type PushPayload } from './adapter.js';
export { savePushSubscription, listPushSubscriptions, deletePushSubscription, subscriptionKeyProblem, type PushSubscriptionRecord } from './subscriptions.js';
