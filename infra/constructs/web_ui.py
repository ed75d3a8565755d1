"""The web UI in AWS (docs/ui.md): the API Lambda behind CloudFront, and the Cognito user
pool its users sign in with.

- `functions/api/handler.py` (stratoflow.ui.app), built like the other functions (the
  shared code asset, its own role and log group), reached only through its Function URL
  with AWS_IAM auth, which only this distribution may invoke: CloudFront signs each
  request with origin access control. For a POST, Lambda needs the body's SHA-256 in
  `x-amz-content-sha256`, which the page script adds (stratoflow/ui/static/app.js).
- CloudFront: HTTPS only (HTTP redirects), pages never cached (`CachingDisabled`), with
  every viewer header but Host, the cookies and the query string passed on (a Function
  URL refuses a foreign Host; the function learns its public URL from the sign-in
  parameter instead); `/static/*` cached by path and `?v=` (content-hashed URLs), with
  nothing else passed on; security headers on every answer; access logs to a bucket.
- Cognito: a user pool without self sign-up (users are added by an administrator),
  optional TOTP MFA, a strong password policy, the hosted login on a domain named after
  the stack, a public app client (authorization code with PKCE, no secret) whose callback
  and sign-out URLs are the distribution's, and the groups `operators` and `viewers`.
- The sign-in parameter: the client id, issuer, hosted login and public URL all depend
  on the distribution, whose origin is the function, so the function's environment
  cannot hold them (a cycle). An SSM parameter, named from the resource model, holds them
  as JSON (`SignInParameter`); the function gets its name and reads it at first use.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import permissions
from infra.constructs.functions import ARCHITECTURE, RUNTIME, Shared, handler
from infra.constructs.observability import retention
from infra.constructs.state_table import StateTable
from stratoflow import resources
from stratoflow.settings import env_var
from stratoflow.ui.rendering import CONTENT_SECURITY_POLICY
from stratoflow.ui.sign_in_settings import CALLBACK_PATH, SIGNED_OUT_PATH, SignInParameter
from stratoflow.ui.static import YEAR_SECONDS

API_TIMEOUT = Duration.seconds(30)
"""CloudFront waits 30 s for an origin by default: a page slower than that is an error
either way."""
API_MEMORY_MB = 1024
"""More memory is more CPU: a faster cold start and page rendering; billed per use only."""
STATIC_PATTERN = "/static/*"
STATIC_DEFAULT_TTL = Duration.days(1)
"""For a static file without `?v=` (its answer says 300 s; a versioned one, a year)."""
ACCESS_LOG_DAYS = 90
HSTS_MAX_AGE = Duration.days(730)
PASSWORD_MIN_LENGTH = 12
TEMPORARY_PASSWORD_DAYS = 3
ID_TOKEN_VALIDITY = Duration.minutes(5)
"""The UI reads the ID token once, at the callback, and keeps its own session."""
REFRESH_TOKEN_VALIDITY = Duration.minutes(60)
"""Unused by the UI; Cognito's shortest."""


class WebUi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        shared: Shared,
        stage: str,
        queue_prefix: str,
        table: StateTable,
        runs_log_group: logs.ILogGroup,
        work_queues: Sequence[sqs.IQueue],
        dead_letter_queues: Sequence[sqs.IQueue],
        access_logs: s3.IBucket,
        retain: bool,
        web_acl_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.parameter_name = resources.ui_sign_in_parameter_name(queue_prefix)
        self._api(shared, table, runs_log_group, work_queues, dead_letter_queues, stack)
        self._distribution(stage, access_logs, retain, web_acl_arn)
        self._users(shared.prefix, stage, retain)
        domain = f"https://{self.distribution.distribution_domain_name}"
        self.url = domain
        document = SignInParameter(
            domain=self.hosted_login.base_url(),
            client_id=self.client.user_pool_client_id,
            issuer=self.user_pool.user_pool_provider_url,
            public_url=domain,
            operators_group=resources.UI_OPERATORS_GROUP,
            viewers_group=resources.UI_VIEWERS_GROUP,
        )
        self.parameter = ssm.StringParameter(
            self,
            "SignInParameter",
            parameter_name=self.parameter_name,
            description=f"stratoflow {stage} web UI: Cognito sign-in settings (JSON)",
            string_value=stack.to_json_string(document.model_dump()),
            tier=ssm.ParameterTier.STANDARD,
        )

    def _api(
        self,
        shared: Shared,
        table: StateTable,
        runs_log_group: logs.ILogGroup,
        work_queues: Sequence[sqs.IQueue],
        dead_letter_queues: Sequence[sqs.IQueue],
        stack: Stack,
    ) -> None:
        name = f"{shared.prefix}-api"
        self.log_group = logs.LogGroup(
            self,
            "ApiLogs",
            log_group_name=f"/aws/lambda/{name}",
            retention=retention(shared.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "ApiRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="stratoflow api Lambda (web UI)",
        )
        # The parameter's ARN from its name, not from the resource: a reference would
        # make the role wait for the parameter, which waits for the distribution.
        parameter_arn = stack.format_arn(
            service="ssm", resource="parameter", resource_name=self.parameter_name.lstrip("/")
        )
        for statement in (
            permissions.logs_write(self.log_group, sid="WriteOwnLogs"),
            permissions.table_read(table),
            permissions.table_write(table, partitions=permissions.UI_PARTITIONS),
            permissions.queue_send(work_queues),
            permissions.queue_depth([*work_queues, *dead_letter_queues]),
            permissions.logs_read(runs_log_group),
            iam.PolicyStatement(
                sid="ReadSignInParameter", actions=["ssm:GetParameter"], resources=[parameter_arn]
            ),
        ):
            self.role.add_to_policy(statement)
        self.function = lambda_.Function(
            self,
            "Api",
            function_name=name,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=shared.code,
            handler=handler("api"),
            timeout=API_TIMEOUT,
            memory_size=API_MEMORY_MB,
            role=self.role,
            log_group=self.log_group,
            environment={
                **shared.environment,
                env_var("ui_sign_in_parameter"): self.parameter_name,
                "POWERTOOLS_SERVICE_NAME": "stratoflow-api",
                "POWERTOOLS_LOG_LEVEL": shared.log_level,
                "POWERTOOLS_METRICS_NAMESPACE": shared.metrics_namespace,
            },
        )
        self.function_url = self.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.AWS_IAM
        )

    def _distribution(
        self, stage: str, access_logs: s3.IBucket, retain: bool, web_acl_arn: str | None
    ) -> None:
        # CloudFront's standard logs are written with ACLs: a bucket of their own, with
        # object-writer ownership (the stack's other buckets have ACLs disabled).
        self.log_bucket = s3.Bucket(
            self,
            "CdnLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="cdn-logs/",
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOG_DAYS))],
        )
        origin = origins.FunctionUrlOrigin.with_origin_access_control(
            self.function_url, read_timeout=API_TIMEOUT
        )
        self.headers_policy = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment=f"stratoflow {stage} web UI: security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
                # The function sets these on every answer (stratoflow.ui.rendering);
                # CloudFront adds them to its own (errors) and keeps the function's.
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=CONTENT_SECURITY_POLICY, override=False
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=False
                ),
            ),
        )
        self.static_cache = cloudfront.CachePolicy(
            self,
            "StaticCache",
            comment=f"stratoflow {stage} web UI: static files, by path and ?v= (content hash)",
            default_ttl=STATIC_DEFAULT_TTL,
            min_ttl=Duration.seconds(0),
            max_ttl=Duration.seconds(YEAR_SECONDS),
            query_string_behavior=cloudfront.CacheQueryStringBehavior.allow_list("v"),
            cookie_behavior=cloudfront.CacheCookieBehavior.none(),
            header_behavior=cloudfront.CacheHeaderBehavior.none(),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Cdn",
            comment=f"stratoflow {stage} web UI",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                response_headers_policy=self.headers_policy,
                compress=True,
            ),
            additional_behaviors={
                STATIC_PATTERN: cloudfront.BehaviorOptions(
                    origin=origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=self.static_cache,
                    response_headers_policy=self.headers_policy,
                    compress=True,
                )
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cloudfront/",
            web_acl_id=web_acl_arn,
        )

    def _users(self, prefix: str, stage: str, retain: bool) -> None:
        url = f"https://{self.distribution.distribution_domain_name}"
        self.user_pool = cognito.UserPool(
            self,
            "Users",
            user_pool_name=f"{prefix}-ui",
            feature_plan=cognito.FeaturePlan.LITE,
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(TEMPORARY_PASSWORD_DAYS),
            ),
            user_invitation=cognito.UserInvitationConfig(
                email_subject=f"Your stratoflow {stage} account",
                email_body=(
                    f"Sign in to the stratoflow {stage} web UI at {url} as {{username}} with "
                    "the temporary password {####}; you will choose your own."
                ),
            ),
            deletion_protection=retain,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        # The hosted login's domain prefix is unique in the region across all accounts:
        # the stack's name and the first part of its id (no account id in a public URL).
        stack_uuid = Fn.select(2, Fn.split("/", Aws.STACK_ID))
        self.hosted_login = self.user_pool.add_domain(
            "HostedLogin",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=Fn.join("-", [prefix, Fn.select(0, Fn.split("-", stack_uuid))])
            ),
        )
        self.client = self.user_pool.add_client(
            "UiClient",
            user_pool_client_name=f"{prefix}-ui",
            generate_secret=False,  # a public client: PKCE instead of a secret
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[
                    cognito.OAuthScope.OPENID,
                    cognito.OAuthScope.EMAIL,
                    cognito.OAuthScope.PROFILE,
                ],
                callback_urls=[f"{url}{CALLBACK_PATH}"],
                logout_urls=[f"{url}{SIGNED_OUT_PATH}"],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=ID_TOKEN_VALIDITY,
            access_token_validity=ID_TOKEN_VALIDITY,
            refresh_token_validity=REFRESH_TOKEN_VALIDITY,
            enable_token_revocation=True,
        )
        self.groups = {
            group: self.user_pool.add_group(
                f"{group.capitalize()}Group", group_name=group, description=description
            )
            for group, description in (
                (resources.UI_OPERATORS_GROUP, "Operator sessions: run, cancel, pause, resume"),
                (resources.UI_VIEWERS_GROUP, "Viewer sessions: read only"),
            )
        }
