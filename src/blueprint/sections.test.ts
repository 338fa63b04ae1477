import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../core/index.js';
import { BlueprintError, blueprintSymbols, collectConditions, collectTemplates, parseBlueprint, type BlueprintIssue } from './index.js';

/**
 * Each class of mistake in the planning sections (channels, policies, segments, stages, offers,
 * journeys, experiments, rollout, KPIs): the code, the line and column, and the text found there —
 * so a wrong position cannot pass by pointing at the right line but the wrong token.
 */

const FILE = 'plan.yaml';
const HEAD = ['version: 1', 'workspace:', '  name: Test'];
/** A small world the cases refer to; its last section is offers, so a case may add offers. */
const WORLD = [
  'channels:', // 4
  '  - name: email',
  '    type: email',
  '  - name: sms',
  '    type: sms', // 8
  'segments:',
  '  - name: vip',
  `    condition: 'count("Order Completed", "60d") >= 3'`,
  'stages:', // 12
  '  - name: onboarding',
  `    condition: 'count("Order Completed", "365d") == 0'`,
  'offers:', // 15
  '  - name: welcome',
  '    stages: [onboarding]',
  '    channels: [email]',
  '    content:',
  '      email: { subject: Hi, body: Hello }', // 20
];
const bare = (...lines: string[]): string => [...HEAD, ...lines].join('\n') + '\n';
/** WORLD, then the case's lines from line 21. */
const world = (...lines: string[]): string => bare(...WORLD, ...lines);

function issuesOf(source: string): BlueprintIssue[] {
  try {
    parseBlueprint(source, FILE);
  } catch (e) {
    expect(e).toBeInstanceOf(BlueprintError);
    return (e as BlueprintError).issues;
  }
  throw new Error('expected the blueprint to be rejected');
}

/** The source text at a 1-based line and column. */
const textAt = (source: string, line: number, column: number): string => (source.split('\n')[line - 1] ?? '').slice(column - 1);

interface Case {
  name: string;
  source: string;
  code: ErrorCode;
  line: number;
  column: number;
  /** The text the position points at. */
  token: string;
  /** Data the message must carry (the bad name, the suggestion), not its wording. */
  mentions?: string[];
}

const journey = (...steps: string[]): string[] => ['journeys:', '  - name: welcome_flow', '    entry: { type: api }', '    steps:', ...steps];

const CASES: Case[] = [
  // Schedules: the cron expression and zone are checked at load, not when the journey first runs.
  {
    name: 'a cron expression with a bad field',
    source: world('journeys:', '  - name: weekly', "    entry: { type: schedule, cron: '0 25 * * mon' }", '    steps:', '      - id: done', '        type: exit'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 23,
    column: 36,
    token: "'0 25 * * mon'",
    mentions: ['25'],
  },
  {
    name: 'a schedule time zone that is not an IANA zone',
    source: world('journeys:', '  - name: weekly', "    entry: { type: schedule, cron: '0 9 * * mon', timezone: Europe/Lisbn }", '    steps:', '      - id: done', '        type: exit'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 23,
    column: 61,
    token: 'Europe/Lisbn',
    mentions: ['Europe/Lisbn'],
  },
  // Event entries: max_event_age is a duration or none, and more than nothing.
  {
    name: 'a max_event_age that is neither a duration nor none',
    source: world('journeys:', '  - name: thanks', '    entry: { type: event, event: Order Completed, max_event_age: 3 days }', '    steps:', '      - id: done', '        type: exit'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 23,
    column: 66,
    token: '3 days',
    mentions: ['journeys[0].entry.max_event_age'],
  },
  {
    name: 'a zero max_event_age, which would refuse every event',
    source: world('journeys:', '  - name: thanks', '    entry: { type: event, event: Order Completed, max_event_age: 0h }', '    steps:', '      - id: done', '        type: exit'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 23,
    column: 66,
    token: '0h',
    mentions: ['0h', 'none'],
  },
  // Journeys: steps are a union told apart by type.
  {
    name: 'a bad step type suggests the closest',
    source: world(...journey('      - id: pause', '        type: wiat', '        duration: 1d')),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 26,
    column: 15,
    token: 'wiat',
    mentions: ['"wait"', 'wait_for_event', 'journeys[0].steps[0].type'],
  },
  {
    name: 'a step without a type',
    source: world(...journey('      - id: pause', '        duration: 1d')),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 25,
    column: 9,
    token: 'id: pause',
    mentions: ['"type"', 'branch'],
  },
  {
    name: 'a wait step without its duration',
    source: world(...journey('      - id: pause', '        type: wait')),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 25,
    column: 9,
    token: 'id: pause',
    mentions: ['"duration"'],
  },
  {
    name: 'a bad entry type',
    source: world('journeys:', '  - name: j', '    entry: { type: segmnt, segment: vip }', '    steps:', '      - { id: bye, type: exit }'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 23,
    column: 20,
    token: 'segmnt',
    mentions: ['"segment"'],
  },
  {
    name: 'a bad value deep inside a step variant (past the validator’s first errors)',
    source: world(...journey('      - id: hello', '        type: send', '        channel: email', '        message: { message_class: marketting, content: { email: { subject: Hi, body: Hi } } }')),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 28,
    column: 35,
    token: 'marketting',
    mentions: ['"marketing"', 'journeys[0].steps[0].message.message_class'],
  },
  {
    name: 'a bad re-entry type',
    source: world('journeys:', '  - name: j', '    entry: { type: api }', '    re_entry: { type: nevr }', '    steps:', '      - { id: bye, type: exit }'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 24,
    column: 23,
    token: 'nevr',
    mentions: ['"never"', 'after_exit'],
  },
  {
    name: 'a bad goal type inside an experiment (a union inside a union)',
    source: world('experiments:', '  tests:', '    - name: h', '      type: holdout', '      target: { type: offer, offer: welcome }', '      percent: 10', '      goals:', '        - { name: g, type: conversoin, event: Order Completed, within: 7d }'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 28,
    column: 28,
    token: 'conversoin',
    mentions: ['"conversion"', 'experiments.tests[0].goals[0].type'],
  },
  {
    name: 'a bad window type inside a cap suggests the closest',
    source: world('policies:', '  frequency_caps:', '    - name: weekly', '      type: global', '      limit: 3', '      window: { type: rollin, length: 7d }'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 26,
    column: 23,
    token: 'rollin',
    mentions: ['"rolling"', 'calendar'],
  },
  {
    name: 'an unknown RACI role suggests the closest',
    source: world('rollout:', '  phases:', '    - { name: pilot, start: "2026-03-02", end: "2026-04-30" }', '  raci:', '    - area: Content', '      responsible: [content_marketer]', '      accountable: cx_laed'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 27,
    column: 20,
    token: 'cx_laed',
    mentions: ['"cx_lead"', 'executive_sponsor'],
  },
  {
    name: 'an unknown key in a rollout phase suggests the closest',
    source: world('rollout:', '  phases:', '    - name: pilot', '      start: "2026-03-02"', '      end: "2026-04-30"', '      chanels: [email]'),
    code: 'CAIRN_ERR_BLUEPRINT_SCHEMA',
    line: 26,
    column: 7,
    token: 'chanels',
    mentions: ['"channels"'],
  },
  {
    name: 'a branch to a missing step',
    source: world(
      ...journey(
        '      - id: check',
        '        type: branch',
        '        branches:',
        `          - condition: 'in_segment("vip")'`,
        '            next: sendd',
        '        otherwise: done',
        '      - id: send',
        '        type: send',
        '        offer: welcome',
        '      - id: done',
        '        type: exit',
      ),
    ),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 29,
    column: 19,
    token: 'sendd',
    mentions: ['"sendd"', '"send"'],
  },
  {
    name: 'a step no other step leads to',
    source: world(...journey('      - id: hello', '        type: send', '        offer: welcome', '        next: done', '      - id: orphan', '        type: wait', '        duration: 1d', '      - id: done', '        type: exit')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 29,
    column: 13,
    token: 'orphan',
    mentions: ['"orphan"'],
  },
  {
    name: 'a step after an exit is unreachable',
    source: world(...journey('      - { id: bye, type: exit }', '      - { id: late, type: wait, duration: 1d }')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 26,
    column: 15,
    token: 'late',
    mentions: ['"late"'],
  },
  {
    name: 'duplicate step ids',
    source: world(...journey('      - { id: pause, type: wait, duration: 1d }', '      - { id: pause, type: exit }')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 26,
    column: 15,
    token: 'pause',
    mentions: ['"pause"'],
  },
  {
    name: 'a loop without a wait',
    source: world(...journey('      - id: again', '        type: send', '        offer: welcome', '        next: again')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 28,
    column: 15,
    token: 'again',
    mentions: ['"again"'],
  },
  {
    name: 'a send step with an unknown offer suggests the closest',
    source: world(...journey('      - id: hello', '        type: send', '        offer: welcom')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 27,
    column: 16,
    token: 'welcom',
    mentions: ['"welcom"', '"welcome"'],
  },
  {
    name: 'a send step on a channel its offer does not list',
    source: world(...journey('      - id: hello', '        type: send', '        offer: welcome', '        channel: sms')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 28,
    column: 18,
    token: 'sms',
    mentions: ['"welcome"', '"sms"'],
  },
  {
    name: 'a send step with both offer and message',
    source: world(...journey('      - id: hello', '        type: send', '        offer: welcome', '        channel: email', '        message:', '          message_class: service', '          content: { email: { subject: Hi, body: Hello } }')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 25,
    column: 13,
    token: 'hello',
    mentions: ['offer', 'message'],
  },
  {
    name: 'a journey entering on an unknown segment',
    source: world('journeys:', '  - name: j', '    entry: { type: segment, segment: vipp }', '    steps:', '      - { id: bye, type: exit }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 23,
    column: 38,
    token: 'vipp',
    mentions: ['"vipp"', '"vip"'],
  },
  {
    name: 'a move to an unknown stage',
    source: world(...journey('      - id: move', '        type: move_stage', '        stage: onbording')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 27,
    column: 16,
    token: 'onbording',
    mentions: ['"onboarding"'],
  },
  {
    name: 'a journey setting a computed trait',
    source: world('computed_traits:', '  - { name: orders_60d, kind: count, window: 60d }', ...journey('      - id: set', '        type: update_trait', '        trait: orders_60d', '        value: 3')),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 29,
    column: 16,
    token: 'orders_60d',
    mentions: ['"orders_60d"'],
  },

  // Offers and placements
  {
    name: 'an offer with an unknown stage suggests the closest',
    source: world('  - name: broken', '    stages: [onbording]', '    channels: [email]', '    content:', '      email: { subject: Hi, body: Hello }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 22,
    column: 14,
    token: 'onbording',
    mentions: ['"onbording"', '"onboarding"'],
  },
  {
    name: 'an offer with an unknown placement',
    source: world('  - name: banner', '    placements: [home]', '    content:', '      home: { headline: Hi }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 22,
    column: 18,
    token: 'home',
    mentions: ['"home"', 'placements'],
  },
  {
    name: 'an offer with content for a channel it does not list',
    source: world('  - name: broken', '    channels: [email]', '    content:', '      email: { subject: Hi, body: Hello }', '      smss: { body: Hello }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 25,
    column: 7,
    token: 'smss',
    mentions: ['"smss"', '"email"'],
  },
  {
    name: 'an offer listing a channel without content for it',
    source: world('  - name: broken', '    channels: [email, sms]', '    content:', '      email: { subject: Hi, body: Hello }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 22,
    column: 23,
    token: 'sms',
    mentions: ['"sms"'],
  },
  {
    name: 'email content without a subject',
    source: world('  - name: broken', '    channels: [email]', '    content:', '      email: { body: Hello }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 24,
    column: 7,
    token: 'email',
    mentions: ['subject'],
  },
  {
    name: 'an offer in an undeclared category',
    source: world('  - name: broken', '    channels: [email]', '    category: promos', '    content:', '      email: { subject: Hi, body: Hello }', 'policies:', '  categories:', '    - name: promotions'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 23,
    column: 15,
    token: 'promos',
    mentions: ['"promotions"'],
  },
  {
    name: 'a placement whose fallback offer does not list it',
    source: world('placements:', '  - name: hero', '    type: web', '    fallback_offer: welcome'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 24,
    column: 21,
    token: 'welcome',
    mentions: ['"welcome"', '"hero"'],
  },

  // Segments and stages
  {
    name: 'a duplicate segment',
    source: bare('segments:', '  - name: vip', "    condition: 'true'", '  - name: vip', "    condition: 'false'"),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 11,
    token: 'vip',
    mentions: ['"vip"'],
  },
  {
    name: 'a duplicate stage',
    source: bare('stages:', '  - name: active', "    condition: 'true'", '  - name: active', "    condition: 'true'"),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 11,
    token: 'active',
    mentions: ['"active"'],
  },

  // Policies
  {
    name: 'a cap on an unknown channel suggests the closest',
    source: world('policies:', '  frequency_caps:', '    - name: mails', '      type: channel', '      channel: emial', '      limit: 2', '      window: { type: calendar, period: week }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 25,
    column: 16,
    token: 'emial',
    mentions: ['"emial"', '"email"'],
  },
  {
    name: 'a suppression scoped to an undeclared category',
    source: world('policies:', '  categories:', '    - name: promotions', '  suppressions:', '    - name: ticket', '      type: pause', `      when: 'count("Ticket Opened", "30d") > count("Ticket Solved", "30d")'`, '      applies_to: { categories: [promotion] }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 28,
    column: 34,
    token: 'promotion',
    mentions: ['"promotions"'],
  },
  {
    name: 'a message class needing an undeclared consent purpose',
    source: world('consent:', '  purposes:', '    - name: marketing', 'policies:', '  classes:', '    marketing: { consent_purpose: marketng }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 26,
    column: 35,
    token: 'marketng',
    mentions: ['"marketing"'],
  },

  // Rollout
  {
    name: 'an unknown channel in a phase suggests the closest',
    source: world('rollout:', '  phases:', '    - name: pilot', '      start: "2026-03-02"', '      end: "2026-04-30"', '      channels: [email, smss]'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 26,
    column: 25,
    token: 'smss',
    mentions: ['"smss"', '"sms"'],
  },
  {
    name: 'a channel listed in a phase before the one it goes live in',
    source: bare(
      'channels:',
      '  - name: sms',
      '    type: sms',
      '    live_from_phase: scale',
      'rollout:',
      '  phases:',
      '    - { name: pilot, start: "2026-03-02", end: "2026-04-30", channels: [sms] }',
      '    - { name: scale, start: "2026-05-04", end: "2026-06-30", channels: [sms] }',
    ),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 10,
    column: 73,
    token: 'sms',
    mentions: ['"sms"', '"scale"', '"pilot"'],
  },
  {
    name: 'a channel live from an unknown phase',
    source: bare('channels:', '  - name: sms', '    type: sms', '    live_from_phase: scaling', 'rollout:', '  phases:', '    - { name: scale, start: "2026-05-04", end: "2026-06-30" }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 22,
    token: 'scaling',
    mentions: ['"scale"'],
  },
  {
    name: 'a phase that ends before it starts',
    source: bare('rollout:', '  phases:', '    - name: pilot', '      start: "2026-04-30"', '      end: "2026-03-02"'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 8,
    column: 12,
    token: '"2026-03-02"',
  },
  {
    name: 'a date that is not in the calendar',
    source: bare('rollout:', '  phases:', '    - name: pilot', '      start: "2026-02-30"', '      end: "2026-03-31"'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 14,
    token: '"2026-02-30"',
  },
  {
    name: 'an open question blocking an unknown phase',
    source: bare('rollout:', '  phases:', '    - { name: pilot, start: "2026-03-02", end: "2026-04-30" }', '  open_questions:', '    - question: Which SMS provider?', '      blocks_phase: pliot'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 9,
    column: 21,
    token: 'pliot',
    mentions: ['"pilot"'],
  },

  // Experiments
  {
    name: 'an experiment on an unknown journey',
    source: world('experiments:', '  tests:', '    - name: holdout', '      type: holdout', '      target: { type: journey, journey: welcome }', '      percent: 10', '      goals:', '        - { name: ordered, type: conversion, event: Order Completed, within: 7d }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 25,
    column: 41,
    token: 'welcome',
    mentions: ['"welcome"', 'journey'],
  },
  {
    name: 'an experiment on a step that sends nothing',
    source: world(
      ...journey('      - { id: pause, type: wait, duration: 1d }', '      - { id: hello, type: send, offer: welcome }'),
      'experiments:',
      '  tests:',
      '    - name: subject',
      '      type: ab',
      '      target: { type: journey, journey: welcome_flow, step: pause }',
      '      variants: [{ name: a, weight: 1 }, { name: b, weight: 1 }]',
      '      goals:',
      '        - { name: ordered, type: conversion, event: Order Completed, within: 7d }',
    ),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 31,
    column: 61,
    token: 'pause',
    mentions: ['"pause"', 'wait'],
  },
  {
    name: 'an A/B variant with an unknown offer',
    source: world('experiments:', '  tests:', '    - name: offer_test', '      type: ab', '      target: { type: offer, offer: welcome }', '      variants: [{ name: a, weight: 1 }, { name: b, weight: 1, offer: welcme }]', '      goals:', '        - { name: ordered, type: conversion, event: Order Completed, within: 7d }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 26,
    column: 71,
    token: 'welcme',
    mentions: ['"welcome"'],
  },

  // KPIs
  {
    name: 'a KPI cohort that is not a segment',
    source: world('kpis:', '  - name: churn', '    metric: { type: event_rate, event: Subscription Cancelled, window: 30d }', '    unit: percent', '    baseline: 4', '    target: 3.5', '    by: "2026-06-30"', '    cohort: vpi'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 28,
    column: 13,
    token: 'vpi',
    mentions: ['"vip"'],
  },
  {
    name: 'a KPI on an unknown goal of an experiment',
    source: world(
      'experiments:',
      '  tests:',
      '    - name: holdout',
      '      type: holdout',
      '      target: { type: offer, offer: welcome }',
      '      percent: 10',
      '      goals: [{ name: ordered, type: conversion, event: Order Completed, within: 7d }]',
      'kpis:',
      '  - name: lift',
      '    metric: { type: experiment_lift, experiment: holdout, goal: order }',
      '    unit: percent',
      '    baseline: 0',
      '    target: 5',
      '    by: "2026-06-30"',
    ),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 30,
    column: 65,
    token: 'order',
    mentions: ['"ordered"'],
  },
  {
    name: 'a KPI without a deadline',
    source: bare('kpis:', '  - name: churn', '    metric: { type: external, source: finance report }', '    unit: percent', '    baseline: 4', '    target: 3.5'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 5,
    column: 11,
    token: 'churn',
    mentions: ['by', 'within'],
  },

  // Events and data contracts
  {
    name: 'an event no source contract declares, when contracts exist',
    source: bare('sources:', '  - name: shop', '    contract:', '      events:', '        - name: Order Completed', 'journeys:', '  - name: thanks', '    entry: { type: event, event: Order Complete }', '    steps:', '      - { id: bye, type: exit }'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 11,
    column: 34,
    token: 'Order Complete',
    mentions: ['"Order Complete"', '"Order Completed"'],
  },
  {
    name: 'a mapping producing an event its source contract does not declare',
    source: bare(
      'sources:',
      '  - name: shop',
      '    type: webhook',
      '    mapping:',
      '      - { type: track, event: Order Placed, userId: "${customer.id}" }',
      '    contract:',
      '      events:',
      '        - name: Order Completed',
    ),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 8,
    column: 31,
    token: 'Order Placed',
    mentions: ['"Order Placed"'],
  },
  {
    name: 'a preset producing events its source contract does not declare',
    source: bare('sources:', '  - name: helpdesk', '    type: webhook', '    preset: support-ticket', '    contract:', '      events:', '        - name: Ticket Opened'),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 7,
    column: 13,
    token: 'support-ticket',
    mentions: ['"Ticket Solved"'],
  },
  {
    name: 'a revenue goal on a property the contract types as text',
    source: world(
      'sources:',
      '  - name: shop',
      '    contract:',
      '      events:',
      '        - name: Order Completed',
      '          properties: { revenue: { type: string } }',
      'experiments:',
      '  tests:',
      '    - name: holdout',
      '      type: holdout',
      '      target: { type: offer, offer: welcome }',
      '      percent: 10',
      '      goals: [{ name: revenue, type: revenue, event: Order Completed, property: revenue, within: 7d }]',
    ),
    code: 'CAIRN_ERR_BLUEPRINT_REFERENCE',
    line: 33,
    column: 81,
    token: 'revenue',
    mentions: ['"revenue"', 'string'],
  },
];

describe('planning sections: each mistake points at the spot', () => {
  it.each(CASES)('$name → $code at $line:$column', (c) => {
    const issues = issuesOf(c.source);
    const first = issues[0] as BlueprintIssue;
    expect({ code: first.code, line: first.line, column: first.column }, `${first.message} → ${textAt(c.source, first.line, first.column)}`).toEqual({ code: c.code, line: c.line, column: c.column });
    expect(textAt(c.source, first.line, first.column).startsWith(c.token), `points at "${textAt(c.source, first.line, first.column)}"`).toBe(true);
    for (const m of c.mentions ?? []) expect(first.message).toContain(m);
    expect(first.frame).toMatch(new RegExp(`^>\\s+${first.line} \\|`, 'm'));
  });

  it('reports only the chosen variant’s problems for a step: a missing key and a misspelt one', () => {
    const issues = issuesOf(world(...journey('      - id: pause', '        type: wait', '        duraton: 1d')));
    expect(issues.map((i) => [i.code, i.line, i.column])).toEqual([
      ['CAIRN_ERR_BLUEPRINT_SCHEMA', 25, 9],
      ['CAIRN_ERR_BLUEPRINT_SCHEMA', 27, 9],
    ]);
    expect(issues[0]?.message).toContain('"duration"');
    expect(issues[1]?.message).toContain('did you mean "duration"');
  });

  it('reports every schema problem, not only the first few', () => {
    const steps = Array.from({ length: 12 }, (_, i) => `      - { id: s${i}, type: wiat, duration: 1d }`);
    const issues = issuesOf(world(...journey(...steps)));
    expect(issues.map((i) => [i.code, i.line])).toEqual(steps.map((_, i) => ['CAIRN_ERR_BLUEPRINT_SCHEMA', 25 + i]));
  });

  it('lists every reference problem at once, in file order', () => {
    const source = world(
      '  - name: second',
      '    stages: [onbording]',
      '    channels: [emial]',
      'rollout:',
      '  phases:',
      '    - { name: pilot, start: "2026-03-02", end: "2026-04-30", channels: [push] }',
    );
    const issues = issuesOf(source);
    expect(issues.map((i) => [i.line, textAt(source, i.line, i.column).split(/[\],]/)[0]])).toEqual([
      [22, 'onbording'],
      [23, 'emial'],
      [26, 'push'],
    ]);
    expect(issues.every((i) => i.code === 'CAIRN_ERR_BLUEPRINT_REFERENCE')).toBe(true);
  });

  it('warns, and still loads, when an event cannot be checked because no source has a contract', () => {
    const source = bare('journeys:', '  - name: thanks', '    entry: { type: event, event: Order Completed }', '    steps:', '      - { id: bye, type: wait_for_event, event: Order Completed, timeout: 1d }');
    const { warnings } = parseBlueprint(source, FILE);
    // One warning per event name, at its first use.
    expect(warnings.map((w) => [w.code, w.severity, w.line, w.column])).toEqual([['CAIRN_ERR_BLUEPRINT_REFERENCE', 'warning', 6, 34]]);
    expect(warnings[0]?.message).toContain('"Order Completed"');
  });

  it('accepts events produced by the mapping of a source without a contract', () => {
    const source = bare('sources:', '  - { name: shop, type: webhook, preset: shop-order }', 'journeys:', '  - name: thanks', '    entry: { type: event, event: Order Completed }', '    steps:', '      - { id: bye, type: exit }');
    expect(parseBlueprint(source, FILE).warnings).toEqual([]);
  });
});

describe('a blueprint using every section', () => {
  const source = bare(
    'sources:', // 4
    '  - name: web',
    '    contract:',
    '      events:',
    '        - { name: Order Completed, properties: { revenue: { type: number, required: true } } }',
    '        - name: Trial Started', // 9
    '      traits:',
    '        plan: { type: string, enum: [free, pro] }',
    '        income: { type: number, sensitivity: restricted }',
    'channels:',
    '  - { name: email, type: email }', // 14
    '  - name: push',
    '    type: push',
    `    audience: 'traits.plan == "pro"'`,
    '    live_from_phase: scale',
    'segments:', // 19
    `  - { name: pro, condition: 'traits.plan == "pro"', persona: { summary: Paying teams } }`,
    'stages:',
    `  - { name: trial, condition: 'count("Trial Started", "14d") >= 1' }`,
    'offers:',
    '  - name: upgrade', // 24
    '    stages: [trial]',
    '    channels: [email, push]',
    `    condition: 'days_since("Trial Started") >= 7'`,
    `    context_weights: [{ when: 'context.hour >= 18', weight: 1.2 }]`,
    '    content:', // 29
    '      email: { subject: "Hi {{ profile.traits.plan }}", body: Upgrade now }',
    '      push: { headline: Upgrade }',
    'journeys:',
    '  - name: trial',
    `    entry: { type: event, event: Trial Started, condition: 'event.properties.plan == "pro"' }`, // 34
    '    exit: [{ type: condition, condition: in_segment("pro") }]',
    '    steps:',
    '      - id: check',
    '        type: branch',
    `        branches: [{ condition: 'consent("marketing", "email")', next: send }]`, // 39
    '      - id: send',
    '        type: send',
    '        offer: upgrade',
    'rollout:',
    '  phases:', // 44
    '    - { name: pilot, start: "2026-03-02", end: "2026-04-30", channels: [email] }',
    '    - { name: scale, start: "2026-05-04", end: "2026-06-30", channels: [email, push], pilot: { segment: pro, percent: 20 } }',
  );

  it('loads', () => {
    const { blueprint, warnings } = parseBlueprint(source, FILE);
    expect(warnings).toEqual([]);
    expect(blueprint.journeys?.[0]?.steps.map((s) => s.type)).toEqual(['branch', 'send']);
  });

  it('lists every condition with its path, kind and position', () => {
    const { blueprint, locator } = parseBlueprint(source, FILE);
    const conditions = collectConditions(blueprint);
    expect(conditions.map((c) => [c.where, c.kind, c.event])).toEqual([
      ['channels[1].audience', 'channel_audience', undefined],
      ['segments[0].condition', 'segment', undefined],
      ['stages[0].condition', 'stage', undefined],
      ['offers[0].condition', 'offer', undefined],
      ['offers[0].context_weights[0].when', 'context_weight', undefined],
      ['journeys[0].entry.condition', 'journey_entry', 'Trial Started'],
      ['journeys[0].steps[0].branches[0].condition', 'branch', undefined],
      ['journeys[0].exit[0].condition', 'journey_exit', undefined],
    ]);
    expect(conditions[1]?.source).toBe('traits.plan == "pro"');
    // The position is where the string starts, and how it is quoted, so the condition language can
    // map an offset inside the string back to the file.
    const at = (where: string): ReturnType<typeof locator.position> => locator.position(conditions.find((c) => c.where === where)?.path ?? []);
    expect(at('offers[0].condition')).toMatchObject({ line: 27, column: 16, scalarType: 'QUOTE_SINGLE' });
    expect(at('journeys[0].exit[0].condition')).toMatchObject({ line: 35, column: 42, scalarType: 'PLAIN' });
    expect(textAt(source, 34, (at('journeys[0].entry.condition')?.column ?? 0) + 1).startsWith('event.properties.plan')).toBe(true);
  });

  it('lists every template with the channel it is for', () => {
    const { blueprint } = parseBlueprint(source, FILE);
    expect(collectTemplates(blueprint).map((t) => [t.where, t.target])).toEqual([
      ['offers[0].content.email.subject', 'email'],
      ['offers[0].content.email.body', 'email'],
      ['offers[0].content.push.headline', 'push'],
    ]);
  });

  it('names what conditions may refer to', () => {
    const symbols = blueprintSymbols(parseBlueprint(source, FILE).blueprint);
    expect(symbols).toMatchObject({
      events: ['Order Completed', 'Trial Started'],
      eventsChecked: true,
      segments: ['pro'],
      stages: ['trial'],
      channels: ['email', 'push'],
      offers: ['upgrade'],
      journeys: ['trial'],
    });
    expect(symbols.traits).toEqual(expect.arrayContaining(['plan', 'income']));
  });
});
