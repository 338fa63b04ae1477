/**
 * The blueprint the contact-policy tests run: email and SMS (SMS live from rollout phase 2),
 * in-app, a daily marketing cap, night-time quiet hours, an open-ticket pause, a returned-item
 * exclusion and an outcome pause. Consent is opt-out (granted by default) so each test withdraws
 * what it needs withdrawn.
 */
export const POLICY_BLUEPRINT = `version: 1
workspace:
  name: Policy
  timezone: Europe/Berlin
consent:
  purposes:
    - name: marketing
      default: granted
    - name: service
      default: granted
sources:
  - name: helpdesk
    type: webhook
    preset: support-ticket
channels:
  - name: email
    type: email
    provider: { name: test }
  - name: sms
    type: sms
    live_from_phase: phase2
    provider: { name: test }
  - name: push
    type: push
    when_unavailable: defer
    max_deferral: 2d
    availability: paused
    provider: { name: test }
  - name: inbox
    type: in_app
    audience: 'traits.plan == "plus"'
    provider: { name: test }
policies:
  categories:
    - name: promotions
    - name: recommendations
    - name: order_updates
  classes:
    transactional:
      consent_purpose: service
    service:
      consent_purpose: service
      capped: false
    marketing:
      consent_purpose: marketing
  frequency_caps:
    - name: marketing_per_day
      type: global
      limit: 1
      window: { type: calendar, period: day }
    - name: promotions_per_week
      type: category
      category: promotions
      limit: 3
      window: { type: rolling, length: 7d }
  quiet_hours:
    - name: night
      start: "21:00"
      end: "08:00"
      applies_to: { classes: [marketing, service] }
      outcome: defer
      max_deferral: 14h
  suppressions:
    - name: open_ticket_pauses_marketing
      type: pause
      when: 'count("Ticket Opened", "90d") > count("Ticket Solved", "90d")'
      applies_to: { classes: [marketing] }
    - name: never_promote_returned_items
      type: exclude_item
      event: Order Refunded
      event_item_path: products.product_id
      item_key: product_id
    - name: rest_after_ignored
      type: outcome_pause
      ignored: 3
      ignored_after: 2d
      pause: 10d
      applies_to: { classes: [marketing], categories: [recommendations] }
offers:
  - name: shoe_promo
    channels: [email]
    priority: 10
    category: promotions
    item_key: product_id
    content:
      email:
        subject: 'Shoes for {{ profile.traits.first_name | default: "you" }}'
        body: Our shoes.
  - name: winter_sale
    channels: [sms, email]
    priority: 50
    category: promotions
    content:
      email: { subject: Winter sale, body: 50% off }
      sms: { body: Winter sale 50% off }
rollout:
  phases:
    - name: phase1
      start: "2026-11-01"
      end: "2026-11-30"
    - name: phase2
      start: "2026-12-01"
      end: "2026-12-31"
`;
