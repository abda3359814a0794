/** The history events the local runner counts against the 25,000 quota, state by state, as Step Functions writes them. */
import { describe, expect, it } from 'vitest';
import { QUOTAS } from '../../lambdas/shared/contract';
import { QuotaGuard, type QuotaViolation } from '../../local/quotas';

function guard() {
  const violations: QuotaViolation[] = [];
  return { quotas: new QuotaGuard((v) => violations.push(v)), violations };
}

describe('history events', () => {
  it('a Task attempt: scheduled, started and its end; one that waits for a task token adds TaskSubmitted', () => {
    const { quotas } = guard();
    quotas.entered('Poll task', 'Task', {});
    quotas.exited('Poll task', {});
    expect(quotas.historyEvents).toBe(1 + 5); // ExecutionStarted, then the Task
    quotas.entered('Send task', 'Task', {}, true);
    expect(quotas.historyEvents).toBe(6 + 5);
    quotas.retried(true);
    quotas.retried();
    expect(quotas.historyEvents).toBe(11 + 4 + 3);
    quotas.exited('Send task', {});
    expect(quotas.historyEvents).toBe(19);
  });

  it('states other than Task: entered and exited', () => {
    const { quotas } = guard();
    for (const type of ['Choice', 'Wait', 'Pass', 'Succeed']) {
      quotas.entered(type, type, {});
      quotas.exited(type, {});
    }
    expect(quotas.historyEvents).toBe(1 + 4 * 2);
  });

  it('fails the execution with States.Runtime at the event that would be the 25,000th', () => {
    const { quotas, violations } = guard();
    while (quotas.historyEvents < QUOTAS.maxHistoryEvents - 1) quotas.entered('Wait', 'Wait', {});
    // Event 24,999 is the last a state may write: the 25,000th is the ExecutionFailed that ends the execution.
    expect(violations).toEqual([]);
    quotas.entered('Wait', 'Wait', {});
    expect(violations).toEqual([expect.objectContaining({ name: 'States.Runtime' })]);
    expect(quotas.historyEvents).toBe(QUOTAS.maxHistoryEvents);
  });
});
