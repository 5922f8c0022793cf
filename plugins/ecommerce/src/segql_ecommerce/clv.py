"""Historic customer lifetime value.

    historic_clv = monetary / max(tenure_days, 1) * horizon_days * margin

The customer's past revenue per day of tenure (days from the first order to
as_of), projected over ``horizon_days`` and converted to profit with the gross
``margin``.  Because monetary / tenure = average order value x orders per day,
this is the "average order value x purchase frequency x margin x lifespan"
formula of e-commerce practice, with the purchase rate measured on the
customer's own history -- the historic (backward-looking) CLV, as opposed to
predictive models such as Pareto/NBD (see Gupta et al., "Modeling Customer
Lifetime Value", *Journal of Service Research* 9(2), 2006, and Kumar &
Reinartz, *Customer Relationship Management*, ch. on customer value metrics).

A first order on the as_of day counts as one day of tenure.  Null when any
input is null (a customer who never ordered has a null tenure) or unusable
(NaN or infinite: segql.pack's rule), or when the tenure is negative (a first
order after as_of).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segql.pack import CallContext, Value, floats, number_sql


def historic_clv(ctx: CallContext, monetary: Value, tenure_days: Value, margin: Value, horizon_days: Value) -> pa.Array:
    """monetary / max(tenure_days, 1) * horizon_days * margin; null on a null input or a negative tenure.

    Revenue per day of tenure projected over the horizon, times gross margin.
    Source: historic CLV (AOV x frequency x margin x lifespan), Gupta et al. 2006.
    """
    revenue, revenue_valid = floats(ctx, monetary)
    tenure, tenure_valid = floats(ctx, tenure_days)
    rate, rate_valid = floats(ctx, margin)
    horizon, horizon_valid = floats(ctx, horizon_days)
    valid = revenue_valid & tenure_valid & rate_valid & horizon_valid & (tenure >= 0)
    value = revenue / np.maximum(np.where(valid, tenure, 1.0), 1.0) * horizon * rate
    return pa.array(np.where(valid, value, 0.0), type=pa.float64(), mask=~valid)


def historic_clv_sql(monetary: str, tenure_days: str, margin: str, horizon_days: str) -> str:
    """historic_clv in SQL: the same operations in the same order on the usable
    values (``number_sql``: NaN and ±inf null), null on a negative tenure.  A
    result beyond the double range is ±inf in DuckDB and Spark; PostgreSQL
    raises on float overflow (docs/sql.md)."""
    revenue, tenure, rate, horizon = (number_sql(x) for x in (monetary, tenure_days, margin, horizon_days))
    value = f"((({revenue} / GREATEST({tenure}, 1.0)) * {horizon}) * {rate})"
    return f"(CASE WHEN {tenure} >= 0 THEN {value} END)"
