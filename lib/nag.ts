/**
 * Helpers to acknowledge cdk-nag findings precisely. cdk-nag v3 names an IAM5 finding after the wildcard resource,
 * with CloudFormation references flattened (`{ "Fn::GetAtt": ["Fn", "Arn"] }` → `<Fn.Arn>`); acknowledging that
 * exact id keeps any other wildcard on the same policy reported.
 */
import { Stack } from 'aws-cdk-lib/core';
import type { IConstruct } from 'constructs';

/** cdk-nag's flattening of a resolved CloudFormation value (Join, Sub, GetAtt, Ref; anything else as JSON). */
export function flattenReference(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value.replace(/\$\{/g, '<').replace(/\}/g, '>');
  const node = value as Record<string, unknown>;
  if (node['Fn::Join']) {
    const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
    return items.map(flattenReference).join(delimiter);
  }
  if (node['Fn::Sub']) return flattenReference(node['Fn::Sub']);
  if (node['Fn::GetAtt']) {
    const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
    return `<${flattenReference(resource)}.${flattenReference(attribute)}>`;
  }
  if (node['Fn::ImportValue']) return flattenReference(node['Fn::ImportValue']);
  if (node.Ref) return `<${flattenReference(node.Ref)}>`;
  return JSON.stringify(value);
}

/** The id of the AwsSolutions-IAM5 finding that a wildcard `resource` (a string, possibly a token) raises. */
export function iam5ResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenReference(Stack.of(scope).resolve(resource))}]`;
}
